// Approvals (审批): definitions (forms and steps as data), starting a request, my requests with
// their live step view, the approver's to-do (待我审批) and what I handled (已处理), acting on a
// task, delegation (代签), and for an administrator new versions of a definition.
// Kept live by the durable pushes workflow.task / .progress / .finished / .urged and todo.done.
// The views are in workflowView.ts.
import type { Connection } from './api';
import { ApiError } from './http';
import { t } from './i18n';
import { Store } from './store';
import { toast } from './toast';
import type { DirectoryUser, Id, PersonRef, ServerEvent, User } from './types';

// --- wire shapes (CONTRACT §4 Approvals, handlers/workflow.py) -----------------------------------

export type FieldType = 'text' | 'number' | 'date' | 'datetime' | 'user' | 'file';
export const FIELD_TYPES: FieldType[] = ['text', 'number', 'date', 'datetime', 'user', 'file'];

export interface FormField {
  name: string;
  label: string;
  type: FieldType;
  required?: boolean;
}

export type ApproverKind = 'supervisor' | 'department_head' | 'role' | 'users' | 'picked';
export const APPROVER_KINDS: ApproverKind[] = ['supervisor', 'department_head', 'role', 'users', 'picked'];

export interface Approvers {
  kind: ApproverKind;
  level?: number;
  role?: string | null;
  user_ids?: Id[];
}

export type WhenOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte' | 'in';
export const WHEN_OPS: WhenOp[] = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in'];
export type WhenValue = string | number | (string | number)[];

export interface When {
  field: string;
  op: WhenOp;
  value: WhenValue;
}

export type StepMode = 'sequential' | 'all' | 'any';
export const STEP_MODES: StepMode[] = ['sequential', 'all', 'any'];
export type OnEmpty = 'skip' | 'admin';

export interface StepDef {
  name: string;
  approvers: Approvers;
  mode: StepMode;
  when?: When | null;
  on_empty?: OnEmpty;
}

export interface Definition {
  key: string;
  version: number;
  name: string;
  form: FormField[];
  steps: StepDef[];
}

export type InstanceState = 'running' | 'approved' | 'rejected' | 'withdrawn' | 'returned';
export type TaskState = 'open' | 'approved' | 'rejected' | 'returned' | 'transferred' | 'cancelled';
export type ActAction = 'approve' | 'reject' | 'return' | 'transfer';

export interface WfTask {
  task_id: Id;
  step: string;
  round: number;
  assignee: PersonRef;
  on_behalf_of: PersonRef | null;
  state: TaskState;
  acted_at: string | null;
  comment: string | null;
}

export interface TrailEntry {
  seq: number;
  at: string;
  actor: PersonRef;
  on_behalf_of: PersonRef | null;
  /** start, approve, reject, return, transfer, withdraw, resubmit, skip */
  action: string;
  step: string;
  comment: string;
  hash: string;
}

export interface Instance {
  instance_id: Id;
  key: string;
  version: number;
  title: string;
  applicant: PersonRef;
  form: Record<string, unknown>;
  state: InstanceState;
  /** the current step's name ("提交" before the first, "完成" after the last) */
  step: string;
  steps: string[];
  created_at: string | null;
  finished_at: string | null;
  tasks: WfTask[];
  trail: TrailEntry[];
}

/** A row of workflow.list; `task` in the todo and done boxes. */
export interface WfItem {
  instance_id: Id;
  key: string;
  title: string;
  state: InstanceState;
  applicant_id: Id;
  created_at: string;
  updated_at: string;
  task?: { task_id: Id; state: TaskState; acted_at: string | null };
}

export interface Delegation {
  delegation_id: Id;
  grantor_id: Id;
  delegate_id: Id;
  starts_at: string;
  ends_at: string;
  keys: string[] | null;
  active: boolean;
  revoked_at: string | null;
}

interface WorkflowTaskEvent {
  task_id: Id;
  instance_id: Id;
  key: string;
  title: string;
  applicant: PersonRef;
  step: string;
}

interface WorkflowProgressEvent {
  instance_id: Id;
  state: InstanceState;
  step: string;
  actor: PersonRef;
  on_behalf_of: PersonRef | null;
  action: string;
  comment: string;
  at: string;
}

interface WorkflowFinishedEvent {
  instance_id: Id;
  key: string;
  state: InstanceState;
}

interface WorkflowUrgedEvent {
  instance_id: Id;
  task_id: Id;
  title: string;
  applicant: PersonRef;
}

interface TodoDoneEvent {
  todo_id: Id;
  kind: string;
  ref_id: Id;
}

export interface StartAnswer {
  instance_id: Id;
  state: InstanceState;
  tasks: { task_id: Id; assignee: Id }[];
}

// --- model -----------------------------------------------------------------------------------

export type Box = 'todo' | 'mine' | 'done';
export const BOXES: Box[] = ['todo', 'mine', 'done'];

export type View =
  | { kind: 'start'; key: string | null }
  | { kind: 'item'; id: Id }
  | { kind: 'delegation' }
  | { kind: 'define' }
  | null;

export interface WfList {
  items: WfItem[];
  hasMore: boolean;
  loading: boolean;
  error: ApiError | null;
}

/** The request on screen. */
export interface Opened {
  id: Id;
  instance: Instance | null;
  loading: boolean;
  error: ApiError | null;
}

export interface DelegationList {
  items: Delegation[];
  loading: boolean;
  error: ApiError | null;
}

const PAGE = 50;
/** open tasks fetched for the badge (and the todo box) */
const TODO_LIMIT = 100;
const REFRESH_DEBOUNCE_MS = 120;
const LIST_DEBOUNCE_MS = 300;
/** directory pages read at most to put names on ids (delegations, users steps) */
const NAME_PAGES = 10;

/** What changes the todo box (and the badge). */
const TODO_CHANGES = ['workflow.task', 'todo.done'] as const;
/** What changes my requests. */
const MINE_CHANGES = ['workflow.progress', 'workflow.finished'] as const;
/** What changes the request on screen. */
const OPEN_CHANGES = ['workflow.task', 'workflow.progress', 'workflow.finished', 'todo.done'] as const;

/** The built-in definitions in the order people look for them; others follow by name. */
const USUAL_ORDER = ['leave', 'trip', 'vehicle', 'expense', 'document_issue', 'document_receive', 'archive_borrow'];

function usualOrder(a: Definition, b: Definition): number {
  const rank = (d: Definition) => {
    const i = USUAL_ORDER.indexOf(d.key);
    return i < 0 ? USUAL_ORDER.length : i;
  };
  return rank(a) - rank(b) || a.name.localeCompare(b.name, 'zh-CN');
}

const STATES: InstanceState[] = ['running', 'approved', 'rejected', 'withdrawn', 'returned'];
const TASK_STATES: TaskState[] = ['open', 'approved', 'rejected', 'returned', 'transferred', 'cancelled'];

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function person(raw: Partial<PersonRef> | null | undefined): PersonRef {
  return { id: str(raw?.id), name: raw?.name ?? '' };
}

function personOrNull(raw: Partial<PersonRef> | null | undefined): PersonRef | null {
  return raw && raw.id !== undefined && raw.id !== null ? person(raw) : null;
}

function state(raw: unknown): InstanceState {
  return STATES.includes(raw as InstanceState) ? (raw as InstanceState) : 'running';
}

function taskState(raw: unknown): TaskState {
  return TASK_STATES.includes(raw as TaskState) ? (raw as TaskState) : 'open';
}

function normalizeItem(raw: Partial<WfItem> & { instance_id: Id }): WfItem {
  return {
    instance_id: str(raw.instance_id),
    key: raw.key ?? '',
    title: raw.title ?? '',
    state: state(raw.state),
    applicant_id: str(raw.applicant_id),
    created_at: raw.created_at ?? new Date().toISOString(),
    updated_at: raw.updated_at ?? raw.created_at ?? new Date().toISOString(),
    task: raw.task
      ? { task_id: str(raw.task.task_id), state: taskState(raw.task.state), acted_at: raw.task.acted_at ?? null }
      : undefined,
  };
}

function normalizeInstance(raw: Partial<Instance>, id: Id): Instance {
  return {
    instance_id: str(raw.instance_id ?? id),
    key: raw.key ?? '',
    version: Number(raw.version) || 1,
    title: raw.title ?? '',
    applicant: person(raw.applicant),
    form: raw.form && typeof raw.form === 'object' ? raw.form : {},
    state: state(raw.state),
    step: raw.step ?? '',
    steps: Array.isArray(raw.steps) ? raw.steps.map(str) : [],
    created_at: raw.created_at ?? null,
    finished_at: raw.finished_at ?? null,
    tasks: (Array.isArray(raw.tasks) ? raw.tasks : [])
      .filter((task) => task && task.task_id !== undefined)
      .map((task) => ({
        task_id: str(task.task_id),
        step: task.step ?? '',
        round: Number(task.round) || 0,
        assignee: person(task.assignee),
        on_behalf_of: personOrNull(task.on_behalf_of),
        state: taskState(task.state),
        acted_at: task.acted_at ?? null,
        comment: task.comment ?? null,
      })),
    trail: (Array.isArray(raw.trail) ? raw.trail : [])
      .filter((e) => e && e.seq !== undefined)
      .map((e) => ({
        seq: Number(e.seq),
        at: e.at ?? '',
        actor: person(e.actor),
        on_behalf_of: personOrNull(e.on_behalf_of),
        action: e.action ?? '',
        step: e.step ?? '',
        comment: e.comment ?? '',
        hash: e.hash ?? '',
      }))
      .sort((a, b) => a.seq - b.seq),
  };
}

/** Ids are opaque, but the server's grow: compare them as numbers where they are. */
function compareIds(a: Id, b: Id): number {
  return a.localeCompare(b, undefined, { numeric: true });
}

/** The key a list item is known by: the task in the todo / done boxes, the request in mine. */
function itemKey(box: Box, item: WfItem): Id {
  return box === 'mine' ? item.instance_id : (item.task?.task_id ?? item.instance_id);
}

function mergeItems(box: Box, old: WfItem[], fresh: WfItem[]): WfItem[] {
  const byKey = new Map(old.map((i) => [itemKey(box, i), i]));
  for (const i of fresh) byKey.set(itemKey(box, i), i);
  return [...byKey.values()].sort((a, b) => compareIds(itemKey(box, b), itemKey(box, a)));
}

/** The events' instance id, as a string. */
function instanceOf(event: ServerEvent): Id | null {
  const id = (event.data as { instance_id?: unknown } | undefined)?.instance_id;
  return id === undefined || id === null ? null : String(id);
}

function isApprovalDone(event: ServerEvent): boolean {
  return event.type === 'todo.done' && (event.data as Partial<TodoDoneEvent> | undefined)?.kind === 'approval';
}

/** The open task of this request that I may act on (as assignee, or as the one it is held for). */
export function actionableTask(instance: Instance | null, me: Id): WfTask | null {
  if (!instance || instance.state !== 'running') return null;
  return instance.tasks.find((task) => task.state === 'open' && (task.assignee.id === me || task.on_behalf_of?.id === me)) ?? null;
}

const emptyList = (): WfList => ({ items: [], hasMore: false, loading: false, error: null });

export class WorkflowModel {
  readonly definitions = new Store<Definition[]>([]);
  readonly definitionsError = new Store<ApiError | null>(null);
  readonly lists: Record<Box, Store<WfList>> = {
    todo: new Store(emptyList()),
    mine: new Store(emptyList()),
    done: new Store(emptyList()),
  };
  readonly tab = new Store<Box>('todo');
  readonly view = new Store<View>(null);
  readonly opened = new Store<Opened | null>(null);
  /** my open approval tasks, by task id: the navigation badge */
  readonly openTasks = new Store<Set<Id>>(new Set());
  readonly unread = new Store<number>(0);
  readonly delegations = new Store<DelegationList>({ items: [], loading: false, error: null });
  /** per request: when 催办 is allowed again (ISO), learned from rate_limited */
  readonly urgeAllowedAt = new Store<Record<Id, string>>({});
  /** names of people met so far, by id */
  readonly names = new Store<Record<Id, string>>({});

  private readonly listRequest: Record<Box, number> = { todo: 0, mine: 0, done: 0 };
  private openRequest = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly listTimers: Partial<Record<Box, ReturnType<typeof setTimeout>>> = {};
  /** tasks acted on here: a list fetched meanwhile must not bring them back */
  private readonly actedHere = new Set<Id>();
  private namesLookup: Promise<void> | null = null;

  constructor(
    private readonly api: Connection,
    readonly me: User,
  ) {
    this.learn([{ id: me.id, name: me.name }]);
    this.openTasks.subscribe((ids) => this.unread.set(ids.size));
    api.on('workflow.task', (data: WorkflowTaskEvent, event: ServerEvent) => this.taskArrived(data, event));
    api.on('workflow.progress', (data: WorkflowProgressEvent) => this.progressArrived(data));
    api.on('workflow.finished', (data: WorkflowFinishedEvent) => this.finishedArrived(data));
    api.on('workflow.urged', (data: WorkflowUrgedEvent) => this.urgedArrived(data));
    api.on('todo.done', (data: TodoDoneEvent) => {
      if (data?.kind === 'approval' && data.ref_id !== undefined) this.taskClosed(String(data.ref_id));
    });
    // After every (re)connect, reset included: the stream is in step by then (see onConnected).
    api.onConnected(() => void this.reload());
  }

  get isAdmin(): boolean {
    return this.me.roles?.includes('admin') ?? false;
  }

  definition(key: string): Definition | undefined {
    return this.definitions.get().find((d) => d.key === key);
  }

  find(id: Id): WfItem | undefined {
    for (const box of BOXES) {
      const item = this.lists[box].get().items.find((i) => i.instance_id === id);
      if (item) return item;
    }
    return undefined;
  }

  // --- names -----------------------------------------------------------------------------

  learn(people: (Partial<PersonRef> | null | undefined)[]): void {
    const known = this.names.get();
    let next: Record<Id, string> | null = null;
    for (const p of people) {
      if (!p || p.id === undefined || p.id === null || !p.name) continue;
      const id = String(p.id);
      if (known[id] === p.name) continue;
      next ??= { ...known };
      next[id] = p.name;
    }
    if (next) this.names.set(next);
  }

  nameOf(id: Id | null | undefined): string {
    if (!id) return '';
    return this.names.get()[id] ?? '';
  }

  /**
   * Put names on these ids: the directory has no lookup by id, so page through it (newest
   * first) until every one is found or it ends.
   */
  async resolveNames(ids: Id[]): Promise<void> {
    const missing = () => ids.filter((id) => id && !this.names.get()[id]);
    if (missing().length === 0) return;
    if (this.namesLookup) {
      await this.namesLookup;
      if (missing().length === 0) return;
    }
    const lookup = (async () => {
      let before: Id | undefined;
      for (let page = 0; page < NAME_PAGES && missing().length > 0; page += 1) {
        const payload: Record<string, unknown> = { limit: 100 };
        if (before) payload.before = before;
        const { users } = await this.api.command<{ users?: DirectoryUser[] }>('directory.users', payload);
        const found = users ?? [];
        this.learn(found);
        if (found.length < 100) return;
        before = found[found.length - 1].id;
      }
    })();
    this.namesLookup = lookup;
    try {
      await lookup;
    } catch {
      // names stay unknown; ids are shown instead
    } finally {
      if (this.namesLookup === lookup) this.namesLookup = null;
    }
  }

  // --- loading ---------------------------------------------------------------------------

  async reload(): Promise<void> {
    void this.loadDefinitions();
    for (const box of BOXES) void this.loadList(box);
    const opened = this.opened.get();
    if (opened && this.view.get()?.kind === 'item') void this.openInstance(opened.id);
    if (this.view.get()?.kind === 'delegation') void this.loadDelegations();
  }

  async loadDefinitions(): Promise<void> {
    try {
      const { definitions } = await this.api.command<{ definitions?: Definition[] }>('workflow.definitions', {});
      this.definitions.set(
        (definitions ?? []).map((d) => ({
          ...d,
          form: Array.isArray(d.form) ? d.form : [],
          steps: Array.isArray(d.steps) ? d.steps : [],
        }))
          .sort(usualOrder),
      );
      this.definitionsError.set(null);
    } catch (err) {
      this.definitionsError.set(ApiError.from(err));
    }
  }

  /** The first page of a box (again), or the next one with `more`. */
  async loadList(box: Box, more = false): Promise<void> {
    const current = this.lists[box].get();
    const last = current.items[current.items.length - 1];
    if (more && (current.loading || !last)) return;
    const request = ++this.listRequest[box];
    this.lists[box].set({ ...current, loading: true });
    const limit = box === 'todo' ? TODO_LIMIT : PAGE;
    const payload: Record<string, unknown> = { box, limit };
    if (more) payload.before = itemKey(box, last);
    const types = box === 'todo' ? TODO_CHANGES : box === 'mine' ? MINE_CHANGES : ['todo.done'];
    try {
      const { answer, meanwhile } = await this.api.snapshot<{ items?: WfItem[] }>('workflow.list', payload, types);
      if (request !== this.listRequest[box]) return; // a newer load is on its way
      let items = (Array.isArray(answer?.items) ? answer.items : [])
        .filter((i) => i && i.instance_id !== undefined)
        .map(normalizeItem);
      const list = this.lists[box].get();
      // The answer was read at some point before it arrived: lay what was pushed meanwhile
      // over it again, in order, so the box follows the event sequence.
      if (box === 'todo') {
        items = this.layTodo(items, meanwhile);
        if (!more) this.setOpenTasks(items);
      } else if (box === 'mine') {
        items = this.layMine(items, meanwhile);
      }
      // A refetch of the first page is the truth down to its oldest item; what was paged in
      // below it stays.
      let kept: WfItem[] = [];
      if (more) kept = list.items;
      else if (box !== 'todo' && items.length > 0) {
        const oldest = itemKey(box, items[items.length - 1]);
        kept = list.items.filter((i) => compareIds(itemKey(box, i), oldest) < 0);
      }
      this.lists[box].set({
        items: mergeItems(box, kept, items),
        hasMore: items.length >= limit,
        loading: false,
        error: null,
      });
    } catch (err) {
      if (request !== this.listRequest[box]) return;
      const error = ApiError.from(err);
      this.lists[box].update((l) => ({ ...l, loading: false, error }));
    }
  }

  private layTodo(items: WfItem[], meanwhile: ServerEvent[]): WfItem[] {
    let out = items.filter((i) => !this.actedHere.has(i.task?.task_id ?? ''));
    for (const event of meanwhile) {
      if (event.type === 'workflow.task') {
        const item = this.todoItem(event.data as unknown as WorkflowTaskEvent, event.at);
        if (item && !this.actedHere.has(item.task!.task_id) && !out.some((i) => i.task?.task_id === item.task!.task_id)) {
          out = [item, ...out];
        }
      } else if (isApprovalDone(event)) {
        const ref = String((event.data as unknown as TodoDoneEvent).ref_id);
        out = out.filter((i) => i.task?.task_id !== ref);
      }
    }
    return out;
  }

  private layMine(items: WfItem[], meanwhile: ServerEvent[]): WfItem[] {
    let out = items;
    for (const event of meanwhile) {
      const id = instanceOf(event);
      const next = (event.data as { state?: unknown }).state;
      if (id === null || next === undefined) continue;
      out = out.map((i) => (i.instance_id === id ? { ...i, state: state(next), updated_at: event.at } : i));
    }
    return out;
  }

  private setOpenTasks(items: WfItem[]): void {
    const ids = new Set(items.filter((i) => i.task && i.task.state === 'open').map((i) => i.task!.task_id));
    for (const id of this.actedHere) ids.delete(id);
    this.openTasks.set(ids);
  }

  private loadListSoon(box: Box): void {
    clearTimeout(this.listTimers[box]);
    this.listTimers[box] = setTimeout(() => {
      delete this.listTimers[box];
      void this.loadList(box);
    }, LIST_DEBOUNCE_MS);
  }

  // --- selecting -------------------------------------------------------------------------

  startNew(key: string | null = null): void {
    this.view.set({ kind: 'start', key });
    this.opened.set(null);
  }

  showDelegations(): void {
    this.view.set({ kind: 'delegation' });
    this.opened.set(null);
    void this.loadDelegations();
  }

  showDefine(): void {
    this.view.set({ kind: 'define' });
    this.opened.set(null);
  }

  close(): void {
    this.view.set(null);
    this.opened.set(null);
  }

  select(id: Id, box?: Box): void {
    if (box) this.tab.set(box);
    this.view.set({ kind: 'item', id });
    const prev = this.opened.get();
    this.opened.set({ id, instance: prev?.id === id ? prev.instance : null, loading: true, error: null });
    void this.openInstance(id);
  }

  /** Fetch the request on screen (again), unless another one was picked meanwhile. */
  async openInstance(id: Id): Promise<void> {
    const request = ++this.openRequest;
    this.opened.update((o) => (o?.id === id ? { ...o, loading: true } : o));
    try {
      const { answer, meanwhile } = await this.api.snapshot<{ instance?: Partial<Instance> }>(
        'workflow.get',
        { instance_id: id },
        OPEN_CHANGES,
      );
      if (request !== this.openRequest || this.opened.get()?.id !== id) return;
      const instance = normalizeInstance(answer?.instance ?? {}, id);
      const taskIds = new Set(instance.tasks.map((task) => task.task_id));
      // Something about it was pushed while the answer was on its way: the answer may predate
      // it, so fetch it once more rather than show a step that has already moved on.
      const moved = meanwhile.some(
        (e) => instanceOf(e) === id || (isApprovalDone(e) && taskIds.has(String((e.data as unknown as TodoDoneEvent).ref_id))),
      );
      this.learn([instance.applicant, ...instance.tasks.flatMap((task) => [task.assignee, task.on_behalf_of]), ...instance.trail.flatMap((e) => [e.actor, e.on_behalf_of])]);
      this.opened.set({ id, instance, loading: moved, error: null });
      this.patchState(id, instance.state);
      if (moved) this.refreshOpen(id);
    } catch (err) {
      if (request !== this.openRequest) return;
      const error = ApiError.from(err);
      this.opened.update((o) => (o?.id === id ? { ...o, loading: false, error } : o));
    }
  }

  /** Fetch the request on screen again soon (one action pushes several events at once). */
  private refreshOpen(id: Id): void {
    if (this.opened.get()?.id !== id) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      if (this.opened.get()?.id === id) void this.openInstance(id);
    }, REFRESH_DEBOUNCE_MS);
  }

  private patchState(id: Id, next: InstanceState, at?: string): void {
    for (const box of BOXES) {
      this.lists[box].update((list) =>
        list.items.some((i) => i.instance_id === id && i.state !== next)
          ? { ...list, items: list.items.map((i) => (i.instance_id === id ? { ...i, state: next, updated_at: at ?? i.updated_at } : i)) }
          : list,
      );
    }
  }

  // --- the applicant's commands --------------------------------------------------------------

  async start(key: string, form: Record<string, unknown>, picked: Id[], clientMsgId: string): Promise<StartAnswer> {
    const payload: Record<string, unknown> = { key, form, client_msg_id: clientMsgId };
    if (picked.length) payload.picked = picked;
    const answer = await this.api.command<StartAnswer>('workflow.start', payload);
    const id = String(answer.instance_id);
    const d = this.definition(key);
    const now = new Date().toISOString();
    const item: WfItem = {
      instance_id: id,
      key,
      title: d ? t('wf.title_of', { name: this.me.name, def: d.name }) : key,
      state: state(answer.state),
      applicant_id: this.me.id,
      created_at: now,
      updated_at: now,
    };
    this.lists.mine.update((list) => ({ ...list, items: mergeItems('mine', list.items, [item]) }));
    this.select(id, 'mine');
    this.loadListSoon('mine');
    return answer;
  }

  async withdraw(id: Id): Promise<void> {
    await this.api.command('workflow.withdraw', { instance_id: id });
    this.patchState(id, 'withdrawn');
    this.refreshOpen(id);
  }

  /** 催办. Throws ApiError; a `rate_limited` one also sets when it is allowed again. */
  async urge(id: Id): Promise<{ urged: number; texted: number }> {
    try {
      const answer = await this.api.command<{ urged?: number; texted?: number }>('workflow.urge', { instance_id: id });
      this.setUrgeAllowed(id, new Date(Date.now() + 10 * 60_000).toISOString());
      return { urged: Number(answer?.urged) || 0, texted: Number(answer?.texted) || 0 };
    } catch (err) {
      const error = ApiError.from(err);
      const retry = (error.details as { retry_after_s?: unknown } | null)?.retry_after_s;
      if (error.code === 'rate_limited' && typeof retry === 'number') {
        this.setUrgeAllowed(id, new Date(Date.now() + retry * 1000).toISOString());
      }
      throw error;
    }
  }

  private setUrgeAllowed(id: Id, at: string): void {
    this.urgeAllowedAt.update((all) => ({ ...all, [id]: at }));
  }

  async resubmit(id: Id, form: Record<string, unknown> | null): Promise<void> {
    const payload: Record<string, unknown> = { instance_id: id };
    if (form) payload.form = form;
    const answer = await this.api.command<{ state?: InstanceState }>('workflow.resubmit', payload);
    this.patchState(id, state(answer?.state));
    this.refreshOpen(id);
  }

  // --- the approver's commands --------------------------------------------------------------

  async act(taskId: Id, action: ActAction, comment: string, to: Id | null): Promise<void> {
    const payload: Record<string, unknown> = { task_id: taskId, action };
    if (comment) payload.comment = comment;
    if (to) payload.to = to;
    const answer = await this.api.command<{ instance_id?: Id; state?: InstanceState }>('workflow.act', payload);
    this.actedHere.add(taskId);
    this.dropTodo(taskId);
    const id = answer?.instance_id !== undefined ? String(answer.instance_id) : this.opened.get()?.id;
    if (id) {
      if (answer?.state) this.patchState(id, state(answer.state));
      this.refreshOpen(id);
    }
    // The counts and boxes as the server now has them.
    void this.loadList('todo');
    void this.loadList('done');
  }

  private dropTodo(taskId: Id): void {
    const ids = this.openTasks.get();
    if (ids.has(taskId)) {
      const next = new Set(ids);
      next.delete(taskId);
      this.openTasks.set(next);
    }
    this.lists.todo.update((list) =>
      list.items.some((i) => i.task?.task_id === taskId)
        ? { ...list, items: list.items.filter((i) => i.task?.task_id !== taskId) }
        : list,
    );
  }

  // --- delegation (代签) -----------------------------------------------------------------------

  async loadDelegations(): Promise<void> {
    this.delegations.update((d) => ({ ...d, loading: true }));
    try {
      const { delegations } = await this.api.command<{ delegations?: Delegation[] }>('delegation.list', {});
      const items = (delegations ?? []).map((d) => ({
        ...d,
        delegation_id: str(d.delegation_id),
        grantor_id: str(d.grantor_id),
        delegate_id: str(d.delegate_id),
        keys: Array.isArray(d.keys) ? d.keys : null,
      }));
      this.delegations.set({ items, loading: false, error: null });
      void this.resolveNames(items.flatMap((d) => [d.grantor_id, d.delegate_id]));
    } catch (err) {
      const error = ApiError.from(err);
      this.delegations.update((d) => ({ ...d, loading: false, error }));
    }
  }

  async grant(to: Id, endsAt: string, startsAt: string | null, keys: string[] | null): Promise<void> {
    const payload: Record<string, unknown> = { to, ends_at: endsAt };
    if (startsAt) payload.starts_at = startsAt;
    if (keys && keys.length) payload.keys = keys;
    await this.api.command('delegation.grant', payload);
    await this.loadDelegations();
  }

  async revoke(delegationId: Id): Promise<void> {
    await this.api.command('delegation.revoke', { delegation_id: delegationId });
    await this.loadDelegations();
  }

  // --- definitions (administrators) ---------------------------------------------------------

  async define(definition: Omit<Definition, 'version'>): Promise<number> {
    const answer = await this.api.command<{ key: string; version: number }>('workflow.define', { definition });
    await this.loadDefinitions();
    return Number(answer?.version) || 0;
  }

  // --- live pushes ---------------------------------------------------------------------------

  private todoItem(data: WorkflowTaskEvent | undefined, at: string): WfItem | null {
    if (!data || data.task_id === undefined || data.instance_id === undefined) return null;
    return {
      instance_id: String(data.instance_id),
      key: data.key ?? '',
      title: data.title ?? '',
      state: 'running',
      applicant_id: str(data.applicant?.id),
      created_at: at,
      updated_at: at,
      task: { task_id: String(data.task_id), state: 'open', acted_at: null },
    };
  }

  private taskArrived(data: WorkflowTaskEvent, event: ServerEvent): void {
    const item = this.todoItem(data, event.at ?? new Date().toISOString());
    if (!item) return;
    const taskId = item.task!.task_id;
    this.learn([data.applicant]);
    if (!this.actedHere.has(taskId)) {
      const ids = this.openTasks.get();
      if (!ids.has(taskId)) this.openTasks.set(new Set([...ids, taskId]));
      this.lists.todo.update((list) =>
        list.items.some((i) => i.task?.task_id === taskId) ? list : { ...list, items: mergeItems('todo', list.items, [item]) },
      );
      toast(t('wf.task_toast', { name: data.applicant?.name ?? '', title: item.title }), 'info', 8_000);
    }
    this.refreshOpen(item.instance_id);
  }

  private taskClosed(taskId: Id): void {
    this.dropTodo(taskId);
    this.loadListSoon('done');
    const opened = this.opened.get();
    if (opened?.instance?.tasks.some((task) => task.task_id === taskId)) this.refreshOpen(opened.id);
  }

  private progressArrived(data: WorkflowProgressEvent): void {
    if (!data || data.instance_id === undefined) return;
    const id = String(data.instance_id);
    this.learn([data.actor, data.on_behalf_of]);
    if (this.lists.mine.get().items.some((i) => i.instance_id === id)) this.patchState(id, state(data.state), data.at);
    else this.loadListSoon('mine'); // started elsewhere (another tab): fetch its row
    if (data.action === 'return' && data.actor?.id !== this.me.id) {
      const title = this.find(id)?.title ?? '';
      toast(t('wf.returned_toast', { name: data.actor?.name ?? '', title }), 'info', 8_000);
    }
    this.refreshOpen(id);
  }

  private finishedArrived(data: WorkflowFinishedEvent): void {
    if (!data || data.instance_id === undefined) return;
    const id = String(data.instance_id);
    const next = state(data.state);
    this.patchState(id, next);
    this.refreshOpen(id);
    if (next !== 'approved' && next !== 'rejected') return;
    const say = (title: string): void => {
      if (next === 'approved') toast(t('wf.approved_toast', { title }), 'success', 8_000);
      else toast(t('wf.rejected_toast', { title }), 'error', 8_000);
    };
    const known = this.find(id)?.title;
    if (known) {
      say(known);
      return;
    }
    // Started by another panel (a document, an archive loan): this model never listed it.
    this.api
      .command<{ instance?: { title?: string } }>('workflow.get', { instance_id: id })
      .then((answer) => {
        if (answer?.instance?.title) say(answer.instance.title);
      })
      .catch(() => undefined);
  }

  private urgedArrived(data: WorkflowUrgedEvent): void {
    if (!data || data.instance_id === undefined) return;
    this.learn([data.applicant]);
    toast(t('wf.urged_toast', { name: data.applicant?.name ?? '', title: data.title ?? '' }), 'info', 10_000);
  }
}
