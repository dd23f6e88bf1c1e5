// Everything that lives while someone is signed in: the connection and the panels' models.
// Built on sign-in, torn down on sign-out.
import { Connection } from './api';
import { BoardModel } from './board';
import { CirculationModel } from './circulation';
import { startIdleReporting } from './idle';
import { MeetingsModel } from './meetings';
import { NotesModel, noteTarget } from './notes';
import { PagerModel } from './pager';
import type { User } from './types';
import { formTarget } from './whereabouts';
import { WorkflowModel } from './workflow';
import { TodoModel } from './todo';
import { TasksModel } from './tasks';
import { CalendarModel } from './calendar';
import { LibraryModel } from './library';
import { DocumentsModel } from './documents';
import { ArchiveModel } from './archive';

const FIRST_LOAD_FALLBACK_MS = 3_000;

export interface AppContext {
  me: User;
  api: Connection;
  board: BoardModel;
  notes: NotesModel;
  pager: PagerModel;
  circulation: CirculationModel;
  meetings: MeetingsModel;
  workflow: WorkflowModel;
  todo: TodoModel;
  tasks: TasksModel;
  calendar: CalendarModel;
  library: LibraryModel;
  documents: DocumentsModel;
  archive: ArchiveModel;
  dispose(): void;
}

export function createContext(me: User): AppContext {
  const api = new Connection();
  const board = new BoardModel(api, me);
  const notes = new NotesModel(api);
  const pager = new PagerModel(api, me);
  const circulation = new CirculationModel(api, me);
  const meetings = new MeetingsModel(api, me);
  const workflow = new WorkflowModel(api, me);
  const todo = new TodoModel(api, me);
  const tasks = new TasksModel(api, me);
  const calendar = new CalendarModel(api, me);
  const library = new LibraryModel(api);
  const documents = new DocumentsModel(api, me);
  const archive = new ArchiveModel(api, me);
  const stopIdle = startIdleReporting(api);
  api.start();
  // Models load on connect; should the socket be slow to come up, load over HTTP meanwhile.
  const fallback = setTimeout(() => {
    if (api.connected) return;
    void board.reload();
    void notes.reload();
    void pager.reload();
    void circulation.reload();
    void meetings.reload();
    void workflow.reload();
    void todo.reload();
    void tasks.reload();
    void calendar.load();
    void library.reload();
    void documents.reload();
    void archive.reload();
  }, FIRST_LOAD_FALLBACK_MS);

  return {
    me,
    api,
    board,
    notes,
    pager,
    circulation,
    meetings,
    workflow,
    todo,
    tasks,
    calendar,
    library,
    documents,
    archive,
    dispose() {
      clearTimeout(fallback);
      stopIdle();
      api.stop();
      formTarget.set(null);
      noteTarget.set(null);
    },
  };
}
