// Official documents (公文): my drafts and registrations (`document.list {box:"mine"}`), what was
// sent to me or given me to handle (`incoming`), what waits on me (`todo`); the document on
// screen (`document.get`, with its approval from `workflow.get`), kept live by
// `document.updated` / `.numbered` / `.circulated` / `.filed` and `workflow.progress` (the
// drafter's) and `workflow.task` / `todo.*` (the approvers'); issuing (`document.issue`) and
// registering an incoming one (`document.receive`). The views are in documentsView.ts.
import type { Connection } from './api';
import { ApiError } from './http';
import { Store } from './store';
import type { FileInfo, Id, PersonRef, User } from './types';

export type DocBox = 'mine' | 'incoming' | 'todo';
export const DOC_BOXES: DocBox[] = ['mine', 'incoming', 'todo'];

export type DocState = 'approving' | 'rejected' | 'withdrawn' | 'numbered' | 'circulated' | 'filed' | 'handling' | 'handled';

export interface DocRow {
  document_id: Id;
  kind: 'issue' | 'receive';
  title: string;
  number: string | null;
  state: DocState;
  drafter: PersonRef;
  from_org: string | null;
  instance_id: Id;
  created_at: string;
  updated_at: string;
}

export interface Handling {
  department_id: Id;
  department: string;
  task_id: Id;
  done: boolean;
  assignees: { user_id: Id; name: string; state: string; percent: number; note: string }[];
}

export interface DocDetail extends DocRow {
  prefix: string | null;
  files: FileInfo[];
  recipients: { users: Id[]; departments: Id[] };
  circulation_id: Id | null;
  receipts: { unopened: number; opened: number; confirmed: number } | null;
  archive_id: Id | null;
  archive_code: string | null;
  instruction: string | null;
  handling: Handling[];
  numbered_at: string | null;
  circulated_at: string | null;
  filed_at: string | null;
  handled_at: string | null;
}

/** The approval behind a document, as much of `workflow.get` as the progress view shows. */
export interface Approval {
  state: string;
  step: string;
  steps: string[];
  tasks: { task_id: Id; step: string; assignee: PersonRef; on_behalf_of: PersonRef | null; state: string; acted_at: string | null; comment: string | null }[];
  trail: { seq: number; at: string; actor: PersonRef; on_behalf_of: PersonRef | null; action: string; step: string; comment: string }[];
}

/** A line of the live log on the document on screen: what arrived while it was open. */
export interface LiveLine {
  key: string;
  at: string;
  type: string;
  text: Record<string, string>;
}

export interface DocList {
  items: DocRow[];
  loading: boolean;
  error: ApiError | null;
}

export interface Opened {
  id: Id;
  doc: DocDetail | null;
  approval: Approval | null;
  loading: boolean;
  error: ApiError | null;
  live: LiveLine[];
}

export type DocView = { kind: 'issue' } | { kind: 'receive' } | { kind: 'doc'; id: Id } | null;

const STATES: DocState[] = ['approving', 'rejected', 'withdrawn', 'numbered', 'circulated', 'filed', 'handling', 'handled'];
const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
const strOrNull = (v: unknown): string | null => (v === undefined || v === null ? null : String(v));
const person = (p: unknown): PersonRef => {
  const r = (p ?? {}) as Partial<PersonRef>;
  return { id: str(r.id), name: r.name ?? '' };
};
const personOrNull = (p: unknown): PersonRef | null => (p ? person(p) : null);

function row(raw: Partial<DocRow>): DocRow {
  return {
    document_id: str(raw.document_id),
    kind: raw.kind === 'receive' ? 'receive' : 'issue',
    title: raw.title ?? '',
    number: strOrNull(raw.number),
    state: STATES.includes(raw.state as DocState) ? (raw.state as DocState) : 'approving',
    drafter: person(raw.drafter),
    from_org: strOrNull(raw.from_org),
    instance_id: str(raw.instance_id),
    created_at: raw.created_at ?? '',
    updated_at: raw.updated_at ?? '',
  };
}

function detail(raw: Partial<DocDetail>): DocDetail {
  return {
    ...row(raw),
    prefix: strOrNull(raw.prefix),
    files: (raw.files ?? []).map((f) => ({ ...f, file_id: str(f.file_id) })),
    recipients: { users: (raw.recipients?.users ?? []).map(str), departments: (raw.recipients?.departments ?? []).map(str) },
    circulation_id: strOrNull(raw.circulation_id),
    receipts: raw.receipts ?? null,
    archive_id: strOrNull(raw.archive_id),
    archive_code: strOrNull(raw.archive_code),
    instruction: strOrNull(raw.instruction),
    handling: (raw.handling ?? []).map((h) => ({ ...h, department_id: str(h.department_id), task_id: str(h.task_id), assignees: h.assignees ?? [] })),
    numbered_at: raw.numbered_at ?? null,
    circulated_at: raw.circulated_at ?? null,
    filed_at: raw.filed_at ?? null,
    handled_at: raw.handled_at ?? null,
  };
}

function approval(raw: Record<string, unknown> | undefined): Approval | null {
  if (!raw) return null;
  const list = (v: unknown) => (Array.isArray(v) ? (v as Record<string, unknown>[]) : []);
  return {
    state: str(raw.state),
    step: str(raw.step),
    steps: list(raw.steps).map(str),
    tasks: list(raw.tasks).map((x) => ({
      task_id: str(x.task_id),
      step: str(x.step),
      assignee: person(x.assignee),
      on_behalf_of: personOrNull(x.on_behalf_of),
      state: str(x.state),
      acted_at: strOrNull(x.acted_at),
      comment: strOrNull(x.comment),
    })),
    trail: list(raw.trail).map((e) => ({
      seq: Number(e.seq),
      at: str(e.at),
      actor: person(e.actor),
      on_behalf_of: personOrNull(e.on_behalf_of),
      action: str(e.action),
      step: str(e.step),
      comment: str(e.comment),
    })),
  };
}

const DOC_EVENTS = ['document.updated', 'document.numbered', 'document.circulated', 'document.filed'] as const;
const REFRESH_MS = 250;

export class DocumentsModel {
  readonly lists: Record<DocBox, Store<DocList>> = {
    mine: new Store<DocList>({ items: [], loading: false, error: null }),
    incoming: new Store<DocList>({ items: [], loading: false, error: null }),
    todo: new Store<DocList>({ items: [], loading: false, error: null }),
  };
  readonly tab = new Store<DocBox>('mine');
  readonly view = new Store<DocView>(null);
  readonly opened = new Store<Opened | null>(null);
  /** the numbering prefix (代字) my documents get */
  readonly prefix = new Store<string>('');
  private readonly request: Record<DocBox, number> = { mine: 0, incoming: 0, todo: 0 };
  private openRequest = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private listTimers: Partial<Record<DocBox, ReturnType<typeof setTimeout>>> = {};

  constructor(
    private readonly api: Connection,
    readonly me: User,
  ) {
    for (const type of DOC_EVENTS) api.on(type, (data: Record<string, unknown>, event) => this.docEvent(type, data, event.at));
    api.on('workflow.progress', (data: Record<string, unknown>, event) => this.progress(data, event.at));
    api.on('workflow.finished', (data: Record<string, unknown>) => this.instanceChanged(str(data?.instance_id)));
    api.on('workflow.task', (data: Record<string, unknown>) => {
      this.loadSoon('todo');
      this.instanceChanged(str(data?.instance_id));
    });
    api.on('circulation.received', () => this.loadSoon('incoming'));
    api.on('task.assigned', () => this.loadSoon('incoming'));
    api.on('todo.done', () => this.loadSoon('todo'));
    api.on('task.updated', () => {
      const o = this.opened.get();
      if (o?.doc?.kind === 'receive') this.refreshSoon(o.id);
    });
    api.onConnected(() => void this.reload());
  }

  get isOfficer(): boolean {
    return this.me.roles?.some((r) => r === 'document_officer' || r === 'admin') ?? false;
  }

  async reload(): Promise<void> {
    await Promise.all([...DOC_BOXES.map((b) => this.loadList(b)), this.loadPrefix()]);
    const o = this.opened.get();
    if (o) await this.fetchOpen(o.id);
  }

  async loadPrefix(): Promise<void> {
    try {
      const { mine } = await this.api.command<{ mine?: string }>('document.prefixes', {});
      this.prefix.set(mine ?? '');
    } catch {
      // the form says nothing about the number then
    }
  }

  async loadList(box: DocBox): Promise<void> {
    const mine = ++this.request[box];
    this.lists[box].update((l) => ({ ...l, loading: true }));
    try {
      const { items } = await this.api.command<{ items: Partial<DocRow>[] }>('document.list', { box, limit: 50 });
      if (mine !== this.request[box]) return;
      this.lists[box].set({ items: (items ?? []).map(row), loading: false, error: null });
    } catch (err) {
      if (mine === this.request[box]) this.lists[box].update((l) => ({ ...l, loading: false, error: ApiError.from(err) }));
    }
  }

  private loadSoon(box: DocBox): void {
    clearTimeout(this.listTimers[box]);
    this.listTimers[box] = setTimeout(() => void this.loadList(box), REFRESH_MS);
  }

  select(id: Id, box?: DocBox): void {
    if (box) this.tab.set(box);
    this.view.set({ kind: 'doc', id });
    const prev = this.opened.get();
    this.opened.set(prev?.id === id ? { ...prev, loading: true } : { id, doc: null, approval: null, loading: true, error: null, live: [] });
    void this.fetchOpen(id);
  }

  async fetchOpen(id: Id): Promise<void> {
    const request = ++this.openRequest;
    try {
      const { document } = await this.api.command<{ document: Partial<DocDetail> }>('document.get', { document_id: id });
      const doc = detail(document ?? {});
      let appr: Approval | null = null;
      try {
        const { instance } = await this.api.command<{ instance?: Record<string, unknown> }>('workflow.get', { instance_id: doc.instance_id });
        appr = approval(instance);
      } catch {
        // a recipient had no part in the approval: only the document shows
      }
      if (request !== this.openRequest || this.opened.get()?.id !== id) return;
      this.opened.update((o) => (o?.id === id ? { ...o, doc, approval: appr, loading: false, error: null } : o));
      this.patchRow(doc);
    } catch (err) {
      if (request !== this.openRequest) return;
      this.opened.update((o) => (o?.id === id ? { ...o, loading: false, error: ApiError.from(err) } : o));
    }
  }

  private refreshSoon(id: Id): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      if (this.opened.get()?.id === id) void this.fetchOpen(id);
    }, REFRESH_MS);
  }

  private patchRow(change: Partial<DocRow> & { document_id: Id }): void {
    for (const box of DOC_BOXES) {
      this.lists[box].update((l) =>
        l.items.some((i) => i.document_id === change.document_id)
          ? { ...l, items: l.items.map((i) => (i.document_id === change.document_id ? { ...i, ...pick(change) } : i)) }
          : l,
      );
    }
  }

  private addLive(id: Id, line: LiveLine): void {
    this.opened.update((o) => (o?.id === id && !o.live.some((l) => l.key === line.key) ? { ...o, live: [...o.live, line] } : o));
  }

  private docEvent(type: string, data: Record<string, unknown>, at: string): void {
    const id = str(data?.document_id);
    if (!id) return;
    const state = STATES.includes(data.state as DocState) ? (data.state as DocState) : undefined;
    const change: Partial<DocRow> & { document_id: Id } = { document_id: id, updated_at: at };
    if (state) change.state = state;
    if (typeof data.number === 'string') change.number = data.number;
    if (this.lists.mine.get().items.some((i) => i.document_id === id)) this.patchRow(change);
    else this.loadSoon('mine');
    const text: Record<string, string> = {};
    for (const [k, v] of Object.entries(data ?? {})) if (typeof v === 'string' || typeof v === 'number') text[k] = String(v);
    this.addLive(id, { key: `${type}-${id}-${str(data.state)}`, at: str(data.at) || at, type, text });
    if (this.opened.get()?.id === id) this.refreshSoon(id);
  }

  private progress(data: Record<string, unknown>, at: string): void {
    const instanceId = str(data?.instance_id);
    const o = this.opened.get();
    const doc = DOC_BOXES.flatMap((b) => this.lists[b].get().items).find((i) => i.instance_id === instanceId);
    if (o?.doc && o.doc.instance_id === instanceId) {
      const actor = (data.actor ?? {}) as Partial<PersonRef>;
      this.addLive(o.id, {
        key: `progress-${instanceId}-${str(data.at) || at}-${str(data.action)}`,
        at: str(data.at) || at,
        type: 'workflow.progress',
        text: { actor: actor.name ?? '', action: str(data.action), step: str(data.step), comment: str(data.comment), state: str(data.state) },
      });
    }
    if (doc) this.loadSoon('mine');
    this.instanceChanged(instanceId);
  }

  private instanceChanged(instanceId: Id): void {
    const o = this.opened.get();
    if (o?.doc && o.doc.instance_id === instanceId) this.refreshSoon(o.id);
  }

  startIssue(): void {
    this.view.set({ kind: 'issue' });
  }

  startReceive(): void {
    this.view.set({ kind: 'receive' });
  }

  close(): void {
    this.view.set(null);
    this.opened.set(null);
  }

  async issue(
    draft: { title: string; file_ids: Id[]; to: Id[]; departments: Id[]; signer: Id | null },
    clientMsgId: string,
  ): Promise<{ document_id: Id; instance_id: Id }> {
    const payload: Record<string, unknown> = { title: draft.title, file_ids: draft.file_ids, to: draft.to, departments: draft.departments, client_msg_id: clientMsgId };
    if (draft.signer) payload.signer = draft.signer;
    const answer = await this.api.command<{ document_id: Id; instance_id: Id }>('document.issue', payload);
    await this.loadList('mine');
    this.select(str(answer.document_id), 'mine');
    return answer;
  }

  async receive(
    draft: { title: string; from_org: string; file_ids: Id[]; departments: Id[]; leader: Id | null },
    clientMsgId: string,
  ): Promise<{ document_id: Id }> {
    const payload: Record<string, unknown> = { ...draft, client_msg_id: clientMsgId };
    if (!draft.leader) delete payload.leader;
    const answer = await this.api.command<{ document_id: Id }>('document.receive', payload);
    await this.loadList('mine');
    this.select(str(answer.document_id), 'mine');
    return answer;
  }
}

function pick(change: Partial<DocRow>): Partial<DocRow> {
  const out: Partial<DocRow> = {};
  if (change.state) out.state = change.state;
  if (change.number !== undefined) out.number = change.number;
  if (change.title) out.title = change.title;
  if (change.updated_at) out.updated_at = change.updated_at;
  return out;
}
