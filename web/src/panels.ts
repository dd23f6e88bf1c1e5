// The panels of the work area. Later features (pager, circulation, meetings, approvals, to-do,
// tasks, calendar) add an entry here; the first one is where a signed-in session lands.
import type { VNode } from 'preact';
import { BoardView, type BoardActions } from './board';
import { CirculationPanel, CirculationPopups } from './circulationView';
import type { AppContext } from './context';
import { html } from './html';
import { t, type MessageKey } from './i18n';
import { MeetingPopups, MeetingsPanel } from './meetingsView';
import { NoteDialog, NotesPanel, noteTarget } from './notes';
import { PagerPanel, PagerPopups } from './pagerView';
import type { Store } from './store';
import { WhereaboutsForm, formTarget } from './whereabouts';
import { WorkflowPanel } from './workflowView';
import { TodoNavExtra, TodoPanel } from './todoView';
import { TasksPanel } from './tasksView';
import { CalendarPanel } from './calendarView';
import { LibraryPanel } from './libraryView';
import { DocumentsPanel } from './documentsView';
import { ArchivePanel } from './archiveView';

export interface Panel {
  id: string;
  label: MessageKey;
  View: (props: { ctx: AppContext }) => VNode;
  /** unread items, shown on the tab (`data-unread`) and counted in the page title */
  unread?: (ctx: AppContext) => Store<number>;
  /** whether `unread` counts in the page title (default yes); not when the to-do inbox counts the same items */
  inTitle?: boolean;
  /** more in the navigation tab, after the badge (e.g. the urgent count) */
  NavExtra?: (props: { ctx: AppContext }) => VNode | null;
  /** shown over every panel (e.g. pop-ups for arrivals) */
  Overlay?: (props: { ctx: AppContext }) => VNode | null;
}

function BoardPanel({ ctx }: { ctx: AppContext }) {
  const actions: BoardActions = {
    canSetFor: ctx.me.roles?.includes('leader') ?? false,
    leaveNote: (user) => noteTarget.set(user),
    setFor: (user) => {
      formTarget.set(user);
      document.getElementById('wa-title')?.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    },
  };
  return html`<div class="board-layout">
    <div class="main-column">
      <${BoardView} board=${ctx.board} me=${ctx.me} actions=${actions} />
    </div>
    <aside class="side-column">
      <${WhereaboutsForm} api=${ctx.api} board=${ctx.board} me=${ctx.me} />
      <${NotesPanel} notes=${ctx.notes} />
    </aside>
    <${NoteDialog} notes=${ctx.notes} />
  </div>`;
}

export const panels: Panel[] = [
  // The first is the landing view after sign-in.
  {
    id: 'todo',
    label: 'nav.todo',
    View: TodoPanel,
    unread: (ctx) => ctx.todo.unread,
    NavExtra: TodoNavExtra,
  },
  { id: 'board', label: 'nav.board', View: BoardPanel },
  {
    id: 'pager',
    label: 'nav.pager',
    View: PagerPanel,
    unread: (ctx) => ctx.pager.unread,
    Overlay: PagerPopups,
  },
  {
    id: 'circulation',
    label: 'nav.circulation',
    View: CirculationPanel,
    unread: (ctx) => ctx.circulation.unread,
    inTitle: false, // in the to-do count
    Overlay: CirculationPopups,
  },
  {
    id: 'meetings',
    label: 'nav.meetings',
    View: MeetingsPanel,
    unread: (ctx) => ctx.meetings.unread,
    Overlay: MeetingPopups,
  },
  {
    id: 'workflow',
    label: 'nav.workflow',
    View: WorkflowPanel,
    unread: (ctx) => ctx.workflow.unread,
    inTitle: false, // in the to-do count
  },
  { id: 'tasks', label: 'nav.tasks', View: TasksPanel },
  { id: 'calendar', label: 'nav.calendar', View: CalendarPanel },
  { id: 'documents', label: 'nav.documents', View: DocumentsPanel },
  { id: 'library', label: 'nav.library', View: LibraryPanel },
  { id: 'archive', label: 'nav.archive', View: ArchivePanel },
];

export function panelTitle(panel: Panel): string {
  return t(panel.label);
}
