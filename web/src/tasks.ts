// Tasks (交办): the ones assigned to me (report progress, complete, hand on) and the ones I
// assigned (each assignee's state, percent and note, live from `task.updated`), and assigning
// a new one. The views are in tasksView.ts.
import type { Connection } from './api';
import { ApiError } from './http';
import { t } from './i18n';
import { Store } from './store';
import { toast } from './toast';
import type { Id, PersonRef, User } from './types';

export type PartState = 'open' | 'in_progress' | 'done' | 'handed_on';

export interface Part {
  user_id: Id;
  name: string;
  state: PartState;
  percent: number;
  note: string;
  handed_to: Id | null;
  updated_at: string;
}

export interface Task {
  task_id: Id;
  title: string;
  body: string;
  from: PersonRef;
  urgency: 'normal' | 'urgent';
  due_at: string | null;
  source: string;
  created_at: string;
  assignees: Part[];
}

export type TaskBox = 'mine' | 'assigned';
export const TASK_BOXES: TaskBox[] = ['mine', 'assigned'];

export interface TaskList {
  tasks: Task[];
  loading: boolean;
  error: ApiError | null;
}

interface TaskUpdatedEvent {
  task_id: Id;
  user_id: Id;
  state: PartState;
  percent: number;
  note: string;
  at: string;
}

interface TaskOverdueEvent {
  task_id: Id;
  title: string;
  due_at: string;
  unfinished: PersonRef[];
}

export interface TaskDraft {
  title: string;
  body: string;
  assignees: Id[];
  due_at: string | null;
  urgent: boolean;
}

const CHANGES = ['task.updated', 'task.assigned'] as const;
const PART_STATES: PartState[] = ['open', 'in_progress', 'done', 'handed_on'];
const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function normalizePart(raw: Partial<Part>): Part {
  return {
    user_id: str(raw.user_id),
    name: raw.name ?? '',
    state: PART_STATES.includes(raw.state as PartState) ? (raw.state as PartState) : 'open',
    percent: Number(raw.percent) || 0,
    note: raw.note ?? '',
    handed_to: raw.handed_to ? str(raw.handed_to) : null,
    updated_at: raw.updated_at ?? '',
  };
}

function normalizeTask(raw: Partial<Task>): Task {
  return {
    task_id: str(raw.task_id),
    title: raw.title ?? '',
    body: raw.body ?? '',
    from: { id: str(raw.from?.id), name: raw.from?.name ?? '' },
    urgency: raw.urgency === 'urgent' ? 'urgent' : 'normal',
    due_at: raw.due_at ?? null,
    source: raw.source ?? 'task',
    created_at: raw.created_at ?? '',
    assignees: (Array.isArray(raw.assignees) ? raw.assignees : []).map(normalizePart),
  };
}

/** Lay a part's change over a task (an older change never overwrites a newer one). */
function patch(task: Task, e: TaskUpdatedEvent): Task {
  const uid = str(e.user_id);
  const part = task.assignees.find((p) => p.user_id === uid);
  if (!part || (part.updated_at && e.at && new Date(part.updated_at).getTime() > new Date(e.at).getTime())) return task;
  return {
    ...task,
    assignees: task.assignees.map((p) =>
      p.user_id === uid ? { ...p, state: e.state, percent: Number(e.percent) || 0, note: e.note ?? '', updated_at: e.at } : p,
    ),
  };
}

export function isOpenPart(p: Part | undefined): boolean {
  return !!p && (p.state === 'open' || p.state === 'in_progress');
}

export class TasksModel {
  readonly lists: Record<TaskBox, Store<TaskList>> = {
    mine: new Store<TaskList>({ tasks: [], loading: false, error: null }),
    assigned: new Store<TaskList>({ tasks: [], loading: false, error: null }),
  };
  readonly tab = new Store<TaskBox>('mine');
  /** the task shown open (highlighted and scrolled to) */
  readonly selected = new Store<Id | null>(null);
  readonly composing = new Store<boolean>(false);

  private readonly request: Record<TaskBox, number> = { mine: 0, assigned: 0 };
  private readonly timers: Partial<Record<TaskBox, ReturnType<typeof setTimeout>>> = {};

  constructor(
    private readonly api: Connection,
    readonly me: User,
  ) {
    api.on('task.assigned', () => this.loadSoon('mine'));
    api.on('task.updated', (data: TaskUpdatedEvent) => this.updated(data));
    api.on('task.overdue', (data: TaskOverdueEvent) => {
      toast(t('task.overdue_toast', { title: data?.title ?? '' }), 'error', 10_000);
    });
    api.onConnected(() => void this.reload());
  }

  async reload(): Promise<void> {
    for (const box of TASK_BOXES) void this.load(box);
  }

  myPart(task: Task): Part | undefined {
    return task.assignees.find((p) => p.user_id === this.me.id);
  }

  async load(box: TaskBox): Promise<void> {
    const request = ++this.request[box];
    this.lists[box].update((l) => ({ ...l, loading: true }));
    try {
      const { answer, meanwhile } = await this.api.snapshot<{ tasks?: Partial<Task>[] }>('task.list', { box }, CHANGES);
      if (request !== this.request[box]) return;
      let tasks = (Array.isArray(answer?.tasks) ? answer.tasks : []).map(normalizeTask);
      for (const e of meanwhile) {
        if (e.type !== 'task.updated') continue;
        const d = e.data as unknown as TaskUpdatedEvent;
        tasks = tasks.map((x) => (x.task_id === str(d.task_id) ? patch(x, d) : x));
      }
      if (box === 'mine' && meanwhile.some((e) => e.type === 'task.assigned')) this.loadSoon('mine');
      this.lists[box].set({ tasks, loading: false, error: null });
    } catch (err) {
      if (request !== this.request[box]) return;
      const error = ApiError.from(err);
      this.lists[box].update((l) => ({ ...l, loading: false, error }));
    }
  }

  private loadSoon(box: TaskBox): void {
    clearTimeout(this.timers[box]);
    this.timers[box] = setTimeout(() => void this.load(box), 200);
  }

  private updated(data: TaskUpdatedEvent): void {
    if (!data || data.task_id === undefined) return;
    const id = str(data.task_id);
    let known = false;
    for (const box of TASK_BOXES) {
      this.lists[box].update((l) => {
        if (!l.tasks.some((x) => x.task_id === id)) return l;
        known = true;
        return { ...l, tasks: l.tasks.map((x) => (x.task_id === id ? patch(x, data) : x)) };
      });
    }
    if (!known) this.loadSoon(str(data.user_id) === this.me.id ? 'mine' : 'assigned');
  }

  find(id: Id): Task | undefined {
    for (const box of TASK_BOXES) {
      const found = this.lists[box].get().tasks.find((x) => x.task_id === id);
      if (found) return found;
    }
    return undefined;
  }

  /** Show one task (from the inbox): its box, fetched when not in the lists yet. */
  async open(id: Id): Promise<void> {
    this.composing.set(false);
    this.selected.set(id);
    let task = this.find(id);
    if (!task) {
      try {
        const { task: raw } = await this.api.command<{ task: Partial<Task> }>('task.get', { task_id: id });
        task = normalizeTask(raw);
        const box: TaskBox = task.assignees.some((p) => p.user_id === this.me.id) ? 'mine' : 'assigned';
        this.lists[box].update((l) => (l.tasks.some((x) => x.task_id === id) ? l : { ...l, tasks: [task!, ...l.tasks] }));
      } catch (err) {
        toast(ApiError.from(err).message, 'error');
        return;
      }
    }
    this.tab.set(task.assignees.some((p) => p.user_id === this.me.id) ? 'mine' : 'assigned');
  }

  private replacePart(taskId: Id, raw: Partial<Part>): void {
    const part = normalizePart(raw);
    for (const box of TASK_BOXES) {
      this.lists[box].update((l) =>
        l.tasks.some((x) => x.task_id === taskId)
          ? {
              ...l,
              tasks: l.tasks.map((x) =>
                x.task_id === taskId ? { ...x, assignees: x.assignees.map((p) => (p.user_id === part.user_id ? part : p)) } : x,
              ),
            }
          : l,
      );
    }
  }

  async progress(taskId: Id, percent: number, note: string): Promise<void> {
    const part = await this.api.command<Partial<Part>>('task.progress', { task_id: taskId, percent, note });
    this.replacePart(taskId, part);
  }

  async complete(taskId: Id, note: string): Promise<void> {
    const payload: Record<string, unknown> = { task_id: taskId };
    if (note) payload.note = note;
    const part = await this.api.command<Partial<Part>>('task.complete', payload);
    this.replacePart(taskId, part);
  }

  async reassign(taskId: Id, to: Id): Promise<void> {
    const part = await this.api.command<Partial<Part>>('task.reassign', { task_id: taskId, to });
    this.replacePart(taskId, part);
    this.loadSoon('mine');
  }

  async assign(draft: TaskDraft, clientMsgId: string): Promise<Id> {
    const payload: Record<string, unknown> = {
      title: draft.title,
      assignees: draft.assignees,
      client_msg_id: clientMsgId,
      urgency: draft.urgent ? 'urgent' : 'normal',
    };
    if (draft.body) payload.body = draft.body;
    if (draft.due_at) payload.due_at = draft.due_at;
    const { task_id } = await this.api.command<{ task_id: Id }>('task.assign', payload);
    await this.load('assigned');
    this.tab.set('assigned');
    this.composing.set(false);
    this.selected.set(str(task_id));
    return str(task_id);
  }
}
