// The to-do inbox (待办): everything I must act on, in one list, with the counts the server
// keeps. Counts are never recounted here: they come with `todo.list` answers and with every
// `todo.added` / `todo.done` push, and the newest in the event sequence stands (a list answer
// that was in flight while a push was applied does not overwrite that push's counts).
// Urgent arrivals ring (WebAudio beep) and, when allowed, show a system notification.
// The views are in todoView.ts.
import { beep, claimAlert, notifyPermission, requestNotify, unlockAudio } from './alert';
import type { Connection } from './api';
import { ApiError } from './http';
import { t, type MessageKey } from './i18n';
import { Store } from './store';
import { toast } from './toast';
import type { Id, PersonRef, ServerEvent, User } from './types';

export type TodoKind = 'approval' | 'task' | 'circulation' | 'meeting_action' | 'schedule' | 'document' | 'notice';
export const TODO_KINDS: TodoKind[] = ['approval', 'task', 'circulation', 'meeting_action', 'schedule', 'document', 'notice'];

export const KIND_LABEL: Record<TodoKind, MessageKey> = {
  approval: 'todo.kind.approval',
  task: 'todo.kind.task',
  circulation: 'todo.kind.circulation',
  meeting_action: 'todo.kind.meeting_action',
  schedule: 'todo.kind.schedule',
  document: 'todo.kind.document',
  notice: 'todo.kind.notice',
};

export interface TodoItem {
  todo_id: Id;
  kind: TodoKind;
  ref_id: Id;
  title: string;
  from: PersonRef | null;
  urgency: 'normal' | 'urgent';
  due_at: string | null;
  created_at: string;
  done_at: string | null;
}

export interface TodoCounts {
  open: number;
  urgent: number;
  overdue: number;
  by_kind: Partial<Record<TodoKind, number>>;
}

interface TodoAddedEvent {
  item: TodoItem;
  counts: TodoCounts;
}

interface TodoDoneEvent {
  todo_id: Id;
  kind: TodoKind;
  ref_id: Id;
  counts: TodoCounts;
}

export type TodoState = 'open' | 'done';

export interface TodoList {
  items: TodoItem[];
  loading: boolean;
  error: ApiError | null;
  loaded: boolean;
}

const CHANGES = ['todo.added', 'todo.done'] as const;
const LIMIT = 100;
const NOTIFY_KEY = 'liaison.todo.notify';

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function normalizeItem(raw: Partial<TodoItem>): TodoItem {
  const kind = TODO_KINDS.includes(raw.kind as TodoKind) ? (raw.kind as TodoKind) : 'notice';
  return {
    todo_id: str(raw.todo_id),
    kind,
    ref_id: str(raw.ref_id),
    title: raw.title ?? '',
    from: raw.from && raw.from.id !== undefined && raw.from.id !== null ? { id: str(raw.from.id), name: raw.from.name ?? '' } : null,
    urgency: raw.urgency === 'urgent' ? 'urgent' : 'normal',
    due_at: raw.due_at ?? null,
    created_at: raw.created_at ?? new Date().toISOString(),
    done_at: raw.done_at ?? null,
  };
}

function normalizeCounts(raw: Partial<TodoCounts> | null | undefined): TodoCounts {
  const byKind: Partial<Record<TodoKind, number>> = {};
  for (const [k, v] of Object.entries(raw?.by_kind ?? {})) {
    if (TODO_KINDS.includes(k as TodoKind)) byKind[k as TodoKind] = Number(v) || 0;
  }
  return {
    open: Number(raw?.open) || 0,
    urgent: Number(raw?.urgent) || 0,
    overdue: Number(raw?.overdue) || 0,
    by_kind: byKind,
  };
}

/** The server's order for open items: urgent first, then due time (none last), then newest. */
export function openOrder(a: TodoItem, b: TodoItem): number {
  const u = Number(b.urgency === 'urgent') - Number(a.urgency === 'urgent');
  if (u) return u;
  if (a.due_at !== b.due_at) {
    if (!a.due_at) return 1;
    if (!b.due_at) return -1;
    const d = new Date(a.due_at).getTime() - new Date(b.due_at).getTime();
    if (d) return d;
  }
  return b.todo_id.localeCompare(a.todo_id, undefined, { numeric: true });
}

function doneOrder(a: TodoItem, b: TodoItem): number {
  return (b.done_at ?? '').localeCompare(a.done_at ?? '') || b.todo_id.localeCompare(a.todo_id, undefined, { numeric: true });
}

export function isOverdue(item: TodoItem, now = Date.now()): boolean {
  return !item.done_at && !!item.due_at && new Date(item.due_at).getTime() < now;
}

type NotifyChoice = 'asked' | 'dismissed' | null;

function savedChoice(): NotifyChoice {
  try {
    const v = localStorage.getItem(NOTIFY_KEY);
    return v === 'asked' || v === 'dismissed' ? v : null;
  } catch {
    return null;
  }
}

const emptyList = (): TodoList => ({ items: [], loading: false, error: null, loaded: false });

export class TodoModel {
  readonly lists: Record<TodoState, Store<TodoList>> = { open: new Store(emptyList()), done: new Store(emptyList()) };
  readonly tab = new Store<TodoState>('open');
  readonly kindFilter = new Store<TodoKind | null>(null);
  readonly counts = new Store<TodoCounts>({ open: 0, urgent: 0, overdue: 0, by_kind: {} });
  /** the open count: the navigation badge and the page title */
  readonly unread = new Store<number>(0);
  /** whether the notification prompt was answered (or put away) already; in localStorage */
  readonly notifyChoice = new Store<NotifyChoice>(savedChoice());

  /** seq of the push whose counts stand (0: from an answer) */
  private countsSeq = 0;
  private readonly request: Record<TodoState, number> = { open: 0, done: 0 };
  private doneTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly api: Connection,
    readonly me: User,
  ) {
    this.counts.subscribe((c) => this.unread.set(c.open));
    api.on('todo.added', (data: TodoAddedEvent, event: ServerEvent) => this.added(data, event));
    api.on('todo.done', (data: TodoDoneEvent, event: ServerEvent) => this.closed(data, event));
    api.onReset(() => {
      this.countsSeq = 0;
    });
    api.onConnected(() => void this.reload());
  }

  async reload(): Promise<void> {
    void this.load('open');
    if (this.tab.get() === 'done' || this.lists.done.get().loaded) void this.load('done');
  }

  /** Take counts from a push, unless a later push was applied already. */
  private takeCounts(raw: Partial<TodoCounts> | undefined, seq: number | null): void {
    if (!raw) return;
    if (seq !== null && seq !== undefined) {
      if (seq < this.countsSeq) return;
      this.countsSeq = seq;
    }
    this.counts.set(normalizeCounts(raw));
  }

  async load(state: TodoState): Promise<void> {
    const request = ++this.request[state];
    this.lists[state].update((l) => ({ ...l, loading: true }));
    try {
      const { answer, meanwhile } = await this.api.snapshot<{ items?: Partial<TodoItem>[]; counts?: TodoCounts }>(
        'todo.list',
        { state, limit: LIMIT },
        CHANGES,
      );
      if (request !== this.request[state]) return;
      let items = (Array.isArray(answer?.items) ? answer.items : []).map(normalizeItem);
      // Pushes applied while the answer was on its way: lay them over it again, in order.
      for (const event of meanwhile) items = this.lay(state, items, event);
      // Counts: the answer's only when no push came meanwhile (else that push's are newer).
      if (meanwhile.length === 0 && answer?.counts) this.counts.set(normalizeCounts(answer.counts));
      this.lists[state].set({ items: items.sort(state === 'open' ? openOrder : doneOrder), loading: false, error: null, loaded: true });
    } catch (err) {
      if (request !== this.request[state]) return;
      const error = ApiError.from(err);
      this.lists[state].update((l) => ({ ...l, loading: false, error }));
    }
  }

  private lay(state: TodoState, items: TodoItem[], event: ServerEvent): TodoItem[] {
    if (event.type === 'todo.added') {
      const item = normalizeItem((event.data as unknown as TodoAddedEvent).item ?? {});
      if (state === 'open' && !items.some((i) => i.todo_id === item.todo_id)) return [...items, item];
      return items;
    }
    const id = str((event.data as unknown as TodoDoneEvent).todo_id);
    if (state === 'open') return items.filter((i) => i.todo_id !== id);
    return items;
  }

  private added(data: TodoAddedEvent, event: ServerEvent): void {
    if (!data?.item) return;
    this.takeCounts(data.counts, event.seq);
    const item = normalizeItem(data.item);
    this.lists.open.update((l) =>
      l.items.some((i) => i.todo_id === item.todo_id) ? l : { ...l, items: [...l.items, item].sort(openOrder) },
    );
    if (item.urgency === 'urgent') this.alertUrgent(item);
  }

  private closed(data: TodoDoneEvent, event: ServerEvent): void {
    if (!data) return;
    this.takeCounts(data.counts, event.seq);
    const id = str(data.todo_id);
    this.lists.open.update((l) => (l.items.some((i) => i.todo_id === id) ? { ...l, items: l.items.filter((i) => i.todo_id !== id) } : l));
    if (this.lists.done.get().loaded) {
      clearTimeout(this.doneTimer);
      this.doneTimer = setTimeout(() => void this.load('done'), 300);
    }
  }

  /** An urgent item arrived: a toast, a short beep (one tab rings), a system notification. */
  private alertUrgent(item: TodoItem): void {
    const kind = t(KIND_LABEL[item.kind]);
    const text = t('todo.urgent_toast', { kind, title: item.title, name: item.from?.name ?? '' });
    toast(text, 'error', 10_000);
    claimAlert(`todo-${item.todo_id}`, () => {
      beep();
      if (notifyPermission.get() === 'granted' && typeof Notification !== 'undefined' && document.hidden) {
        try {
          const n = new Notification(t('todo.urgent_title', { kind }), { body: item.title, tag: `todo-${item.todo_id}` });
          n.onclick = () => {
            window.focus();
            location.hash = '#todo';
            n.close();
          };
        } catch {
          // notifications only from a service worker here: the toast stands
        }
      }
    });
  }

  setTab(state: TodoState): void {
    this.tab.set(state);
    if (state === 'done') void this.load('done');
  }

  async dismiss(todoId: Id): Promise<void> {
    await this.api.command('todo.dismiss', { todo_id: todoId });
    // the todo.done push brings the counts; drop the row now
    this.lists.open.update((l) => ({ ...l, items: l.items.filter((i) => i.todo_id !== todoId) }));
  }

  // --- the notification prompt ---------------------------------------------------------------

  async allowNotifications(): Promise<void> {
    unlockAudio();
    this.rememberChoice('asked');
    await requestNotify();
  }

  dismissPrompt(): void {
    this.rememberChoice('dismissed');
  }

  private rememberChoice(choice: NotifyChoice): void {
    try {
      if (choice) localStorage.setItem(NOTIFY_KEY, choice);
    } catch {
      // this page only
    }
    this.notifyChoice.set(choice);
  }
}
