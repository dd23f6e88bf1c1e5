// The pager (网络寻呼): my pages in and out, kept live by pager.message / pager.receipt, the
// conversation with one person, search, receipts of what I sent, and my SMS preference.
// The views are in pagerView.ts.
import type { Connection } from './api';
import { chime, claimAlert, notify } from './alert';
import type { Recipient } from './compose';
import { ApiError } from './http';
import { t } from './i18n';
import { Store } from './store';
import type {
  Department,
  DirectoryUser,
  FileInfo,
  Id,
  PagerMessage,
  PagerPrefs,
  PagerReceiptEvent,
  PagerSendAnswer,
  PersonRef,
  Priority,
  ReceiptRow,
  User,
} from './types';

const PAGE = 50;
const THREAD_PAGE = 30;
const POPUP_MAX = 3;
const POPUP_NORMAL_MS = 20_000;


export interface Draft {
  recipients: Recipient[];
  body: string;
  priority: Priority;
  attachments: FileInfo[];
  reply_to?: Id | null;
}

/** A list that pages backwards with `before`. */
export interface Paged {
  messages: PagerMessage[];
  hasMore: boolean;
  loading: boolean;
  error: ApiError | null;
}

export interface ThreadState extends Paged {
  peer: PersonRef;
  /** the message the thread was opened on */
  focus: Id | null;
}

export interface SearchState extends Paged {
  query: string;
}

export interface Receipts {
  rows: ReceiptRow[];
  /** whether rows hold every recipient (fetched, or known from the send answer) */
  loaded: boolean;
  error: ApiError | null;
}

export type Selection = { kind: 'message'; id: Id } | { kind: 'thread'; peer: PersonRef } | null;

type ReceiptProgress = 'sent' | 'delivered' | 'read';

export function receiptState(row: ReceiptRow): ReceiptProgress {
  if (row.read_at) return 'read';
  if (row.delivered_at) return 'delivered';
  return 'sent';
}

export function summarize(
  message: PagerMessage,
  receipts: Receipts | undefined,
): { total: number; delivered: number; read: number } | null {
  if (receipts && receipts.rows.length > 0) {
    const { rows } = receipts;
    return {
      total: rows.length,
      delivered: rows.filter((r) => r.delivered_at || r.read_at).length,
      read: rows.filter((r) => r.read_at).length,
    };
  }
  return message.receipts_summary ?? null;
}

function time(iso: string | null | undefined): number {
  const value = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(value) ? 0 : value;
}

function newestFirst(a: PagerMessage, b: PagerMessage): number {
  return time(b.sent_at) - time(a.sent_at);
}

/** The later of two optional timestamps. */
function later(a: string | null | undefined, b: string | null | undefined): string | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return time(b) > time(a) ? b : a;
}

/** Fill the fields a push or an older server may leave out. */
function normalize(raw: Partial<PagerMessage> & { message_id: Id }): PagerMessage {
  return {
    ...raw,
    message_id: String(raw.message_id),
    from: raw.from ?? { id: '', name: '' },
    body: raw.body ?? '',
    priority: raw.priority === 'urgent' ? 'urgent' : 'normal',
    attachments: Array.isArray(raw.attachments) ? raw.attachments.filter((a) => a && a.file_id) : [],
    sent_at: raw.sent_at ?? new Date().toISOString(),
  };
}

/** Union by id; `fresh` wins. Newest first. */
function merge(old: PagerMessage[], fresh: PagerMessage[]): PagerMessage[] {
  const byId = new Map(old.map((m) => [m.message_id, m]));
  for (const m of fresh) byId.set(m.message_id, m);
  return [...byId.values()].sort(newestFirst);
}

function emptyPaged(): Paged {
  return { messages: [], hasMore: false, loading: true, error: null };
}

interface HistoryAnswer {
  messages?: PagerMessage[];
  has_more?: boolean;
}

export class PagerModel {
  /** received and sent pages, newest first */
  readonly messages = new Store<PagerMessage[]>([]);
  readonly hasMore = new Store<boolean>(false);
  readonly loading = new Store<boolean>(false);
  readonly error = new Store<ApiError | null>(null);
  readonly unread = new Store<number>(0);
  readonly receipts = new Store<Record<Id, Receipts>>({});
  readonly popups = new Store<PagerMessage[]>([]);
  readonly selection = new Store<Selection>(null);
  readonly thread = new Store<ThreadState | null>(null);
  readonly search = new Store<SearchState | null>(null);
  readonly prefs = new Store<PagerPrefs | null>(null);
  readonly prefsError = new Store<ApiError | null>(null);
  readonly departments = new Store<Department[]>([]);
  /** bumped to ask the reply box to take the focus */
  readonly replyFocus = new Store<number>(0);
  /** bumped when a name arrives, so receipt tables re-render */
  readonly namesVersion = new Store<number>(0);

  private readonly names = new Map<Id, string>();
  private readonly deptsFetched = new Set<Id>();
  private readonly receiptsInflight = new Set<Id>();
  /** read here: a list fetched while pager.read was under way must not bring them back unread */
  private readonly readHere = new Set<Id>();
  private searchRequest = 0;

  constructor(
    private readonly api: Connection,
    private readonly me: User,
  ) {
    this.names.set(me.id, me.name);
    this.messages.subscribe((list) => this.unread.set(list.filter((m) => this.isUnread(m)).length));
    api.on('pager.message', (data: PagerMessage) => this.received(data));
    api.on('pager.receipt', (data: PagerReceiptEvent) => this.receiptArrived(data));
    // After every (re)connect, reset included: the stream is in step by then (see onConnected).
    api.onConnected(() => void this.reload());
    api.onReset(() => {
      // Whatever we knew of receipts may have moved on without us (the reload follows).
      this.receipts.update((all) =>
        Object.fromEntries(Object.entries(all).map(([id, r]) => [id, { ...r, loaded: false }])),
      );
    });
  }

  isMine(message: PagerMessage): boolean {
    return message.from?.id === this.me.id;
  }

  isUnread(message: PagerMessage): boolean {
    if (this.isMine(message)) return false;
    const legacy = message as PagerMessage & { read_at?: string | null };
    return message.my_state === 'unread' || (message.my_state === undefined && legacy.read_at === null);
  }

  nameOf(userId: Id): string {
    return this.names.get(userId) ?? userId;
  }

  private learn(people: (PersonRef | undefined | null)[]): void {
    let added = false;
    for (const p of people) {
      if (p?.id && p.name && this.names.get(p.id) !== p.name) {
        this.names.set(p.id, p.name);
        added = true;
      }
    }
    if (added) this.namesVersion.update((n) => n + 1);
  }

  private learnFrom(messages: PagerMessage[]): void {
    this.learn(messages.flatMap((m) => [m.from, ...(m.to ?? [])]));
  }

  find(id: Id): PagerMessage | undefined {
    return (
      this.messages.get().find((m) => m.message_id === id) ??
      this.thread.get()?.messages.find((m) => m.message_id === id) ??
      this.search.get()?.messages.find((m) => m.message_id === id)
    );
  }

  // --- loading -------------------------------------------------------------------------

  private history(payload: Record<string, unknown>, limit: number): Promise<HistoryAnswer> {
    return this.api.command<HistoryAnswer>('pager.history', { ...payload, limit });
  }

  private page(answer: HistoryAnswer, limit: number): { messages: PagerMessage[]; hasMore: boolean } {
    const messages = (Array.isArray(answer?.messages) ? answer.messages : [])
      .filter((m) => m && m.message_id !== undefined)
      .map(normalize)
      .map((m) => (this.readHere.has(m.message_id) && m.my_state === 'unread' ? { ...m, my_state: 'read' as const } : m));
    this.learnFrom(messages);
    return { messages, hasMore: answer?.has_more ?? messages.length >= limit };
  }

  async reload(): Promise<void> {
    void this.loadDepartments();
    if (this.prefsError.get()) void this.loadPrefs();
    this.loading.set(true);
    try {
      const { messages, hasMore } = this.page(await this.history({}, PAGE), PAGE);
      // Keep what was pushed or paged in meanwhile; the server's copy wins where both exist.
      this.messages.set(merge(this.messages.get(), messages));
      this.hasMore.set(hasMore);
      this.error.set(null);
    } catch (err) {
      this.error.set(ApiError.from(err));
    } finally {
      this.loading.set(false);
    }
    const selected = this.selection.get();
    if (selected?.kind === 'thread') void this.openThread(selected.peer, this.thread.get()?.focus ?? null);
    if (selected?.kind === 'message') void this.loadReceipts(selected.id, true);
  }

  async loadMore(): Promise<void> {
    const list = this.messages.get();
    const last = list[list.length - 1];
    if (!last || this.loading.get()) return;
    this.loading.set(true);
    try {
      const { messages, hasMore } = this.page(await this.history({ before: last.message_id }, PAGE), PAGE);
      this.messages.set(merge(this.messages.get(), messages));
      this.hasMore.set(hasMore);
      this.error.set(null);
    } catch (err) {
      this.error.set(ApiError.from(err));
    } finally {
      this.loading.set(false);
    }
  }

  // --- live pushes ---------------------------------------------------------------------

  private received(data: PagerMessage): void {
    if (!data || data.message_id === undefined) return;
    const known = this.find(String(data.message_id));
    const message = normalize({ ...data, my_state: this.isMine(data) ? undefined : 'unread' });
    this.learn([message.from]);
    this.messages.set(merge(this.messages.get(), [known ? { ...message, my_state: known.my_state } : message]));
    const thread = this.thread.get();
    if (thread && thread.peer.id === message.from.id && !thread.messages.some((m) => m.message_id === message.message_id)) {
      this.thread.set({ ...thread, messages: [...thread.messages, message] });
    }
    if (known || this.isMine(message)) return;
    this.popup(message);
  }

  private popup(message: PagerMessage): void {
    this.popups.update((list) => [message, ...list.filter((m) => m.message_id !== message.message_id)].slice(0, POPUP_MAX));
    const urgent = message.priority === 'urgent';
    if (!urgent) setTimeout(() => this.dismissPopup(message.message_id), POPUP_NORMAL_MS);
    claimAlert(message.message_id, () => {
      chime(urgent);
      const title = urgent
        ? t('pager.notify_title_urgent', { name: message.from.name })
        : t('pager.notify_title', { name: message.from.name });
      notify(title, message.body.slice(0, 140), `pager-${message.message_id}`, urgent, () => {
        location.hash = '#pager';
        void this.select(message.message_id);
      });
    });
  }

  dismissPopup(id: Id): void {
    this.popups.update((list) => list.filter((m) => m.message_id !== id));
  }

  private receiptArrived(data: PagerReceiptEvent): void {
    if (!data?.message_id || !data.user_id) return;
    const id = String(data.message_id);
    if (data.user_id === this.me.id) {
      // My own read receipt: I read this page in another tab.
      if (data.state === 'read') {
        this.readHere.add(id);
        this.popups.update((list) => list.filter((m) => m.message_id !== id));
        this.patchMessages(new Set([id]), { my_state: 'read' });
      }
      return;
    }
    const current = this.receipts.get()[id];
    const row = current?.rows.find((r) => r.user_id === data.user_id) ?? {
      user_id: data.user_id,
      delivered_at: null,
      read_at: null,
      sms: null,
    };
    const next: ReceiptRow = { ...row };
    if (data.state === 'delivered') next.delivered_at = later(row.delivered_at, data.at);
    else if (data.state === 'read') {
      next.read_at = later(row.read_at, data.at);
      next.delivered_at = row.delivered_at ?? data.at;
    } else if (data.state === 'emailed') next.emailed_at = data.at;
    else if (data.state.startsWith('sms_')) next.sms = { state: data.state.slice(4), at: data.at };
    this.setRows(id, [next], current?.loaded ?? false);
    // Only part of the picture: fetch the rest, once.
    if (!current?.loaded) void this.loadReceipts(id);
  }

  /** Merge rows into a message's receipts, keeping the furthest state of each. */
  private setRows(id: Id, rows: ReceiptRow[], loaded: boolean, error: ApiError | null = null): void {
    this.receipts.update((all) => {
      const old = all[id]?.rows ?? [];
      const byUser = new Map(old.map((r) => [r.user_id, r]));
      for (const r of rows) {
        const prev = byUser.get(r.user_id);
        byUser.set(
          r.user_id,
          prev
            ? {
                ...prev,
                ...r,
                name: r.name ?? prev.name,
                online: r.online ?? prev.online,
                delivered_at: later(prev.delivered_at, r.delivered_at),
                read_at: later(prev.read_at, r.read_at),
                sms: time(r.sms?.at) >= time(prev.sms?.at) ? (r.sms ?? prev.sms) : prev.sms,
                emailed_at: later(prev.emailed_at, r.emailed_at),
              }
            : r,
        );
      }
      return { ...all, [id]: { rows: [...byUser.values()], loaded: loaded || (all[id]?.loaded ?? false), error } };
    });
  }

  async loadReceipts(id: Id, force = false): Promise<void> {
    const message = this.find(id);
    if (message && !this.isMine(message)) return;
    if (this.receiptsInflight.has(id) || (!force && this.receipts.get()[id]?.loaded)) return;
    this.receiptsInflight.add(id);
    try {
      const { recipients } = await this.api.command<{ recipients: ReceiptRow[] }>('pager.receipts', {
        message_id: id,
      });
      const rows = (recipients ?? []).map((r) => ({ ...r, user_id: String(r.user_id), sms: r.sms ?? null }));
      this.learn(rows.map((r) => ({ id: r.user_id, name: r.name ?? '' })));
      this.setRows(id, rows, true);
      void this.fillNames(id);
    } catch (err) {
      this.setRows(id, [], false, ApiError.from(err));
    } finally {
      this.receiptsInflight.delete(id);
    }
  }

  /** Recipients reached through a department: look their names up in that department. */
  private async fillNames(id: Id): Promise<void> {
    const unknown = (this.receipts.get()[id]?.rows ?? []).some((r) => !r.name && !this.names.has(r.user_id));
    if (!unknown) return;
    for (const dept of this.find(id)?.departments ?? []) {
      if (this.deptsFetched.has(dept.id)) continue;
      this.deptsFetched.add(dept.id);
      try {
        const { users } = await this.api.command<{ users: DirectoryUser[] }>('directory.users', {
          department_id: dept.id,
        });
        this.learn(users ?? []);
      } catch {
        this.deptsFetched.delete(dept.id);
      }
    }
  }

  // --- reading -------------------------------------------------------------------------

  private patchMessages(ids: Set<Id>, change: Partial<PagerMessage>): void {
    const patch = (list: PagerMessage[]) => list.map((m) => (ids.has(m.message_id) ? { ...m, ...change } : m));
    this.messages.update(patch);
    this.thread.update((th) => (th ? { ...th, messages: patch(th.messages) } : th));
    this.search.update((s) => (s ? { ...s, messages: patch(s.messages) } : s));
  }

  async markRead(ids: Id[]): Promise<void> {
    const wanted = ids.filter((id) => {
      const m = this.find(id);
      return m && this.isUnread(m);
    });
    this.popups.update((list) => list.filter((m) => !ids.includes(m.message_id)));
    if (wanted.length === 0) return;
    const set = new Set(wanted);
    for (const id of wanted) this.readHere.add(id);
    this.patchMessages(set, { my_state: 'read' });
    try {
      await this.api.command('pager.read', { message_ids: wanted });
      this.error.set(null);
    } catch (err) {
      for (const id of wanted) this.readHere.delete(id);
      this.patchMessages(set, { my_state: 'unread' });
      this.error.set(ApiError.from(err));
    }
  }

  markAllRead(): Promise<void> {
    return this.markRead(this.messages.get().filter((m) => this.isUnread(m)).map((m) => m.message_id));
  }

  /** Show a message: a received one opens the conversation with its sender, marked read. */
  async select(id: Id): Promise<void> {
    const message = this.find(id);
    if (message && !this.isMine(message)) {
      void this.markRead([id]);
      this.selection.set({ kind: 'thread', peer: message.from });
      await this.openThread(message.from, id);
      return;
    }
    this.selection.set({ kind: 'message', id });
    await this.loadReceipts(id);
  }

  /** Reply to a page: its thread, with the reply box focused. */
  reply(id: Id): void {
    void this.select(id);
    this.replyFocus.update((n) => n + 1);
  }

  // --- conversations -------------------------------------------------------------------

  async openThread(peer: PersonRef, focus: Id | null = null): Promise<void> {
    const old = this.thread.get();
    const keep = old?.peer.id === peer.id ? old.messages : [];
    this.selection.set({ kind: 'thread', peer });
    this.thread.set({ ...emptyPaged(), messages: keep, peer, focus });
    try {
      const { messages, hasMore } = this.page(await this.history({ peer: peer.id }, THREAD_PAGE), THREAD_PAGE);
      if (this.thread.get()?.peer.id !== peer.id) return; // another thread won
      this.thread.set({ peer, focus, messages: merge(keep, messages).reverse(), hasMore, loading: false, error: null });
    } catch (err) {
      this.thread.update((th) => (th?.peer.id === peer.id ? { ...th, loading: false, error: ApiError.from(err) } : th));
    }
  }

  async olderInThread(): Promise<void> {
    const th = this.thread.get();
    if (!th || th.loading || th.messages.length === 0) return;
    this.thread.set({ ...th, loading: true });
    try {
      const answer = await this.history({ peer: th.peer.id, before: th.messages[0].message_id }, THREAD_PAGE);
      const { messages, hasMore } = this.page(answer, THREAD_PAGE);
      this.thread.update((cur) =>
        cur?.peer.id === th.peer.id
          ? { ...cur, messages: merge(cur.messages, messages).reverse(), hasMore, loading: false, error: null }
          : cur,
      );
    } catch (err) {
      this.thread.update((cur) => (cur ? { ...cur, loading: false, error: ApiError.from(err) } : cur));
    }
  }

  closeDetail(): void {
    this.selection.set(null);
    this.thread.set(null);
  }

  // --- sending -------------------------------------------------------------------------

  async send(draft: Draft, clientMsgId: string): Promise<PagerSendAnswer> {
    const to = draft.recipients.filter((r) => r.kind === 'user');
    const depts = draft.recipients.filter((r) => r.kind === 'dept');
    const payload: Record<string, unknown> = { body: draft.body, priority: draft.priority, client_msg_id: clientMsgId };
    if (to.length) payload.to = to.map((r) => r.id);
    if (depts.length) payload.departments = depts.map((r) => r.id);
    if (draft.attachments.length) payload.attachments = draft.attachments.map((a) => a.file_id);
    if (draft.reply_to) payload.reply_to = draft.reply_to;
    const answer = await this.api.command<PagerSendAnswer>('pager.send', payload);
    const id = String(answer.message_id);
    this.learn(to);
    const message: PagerMessage = {
      message_id: id,
      from: { id: this.me.id, name: this.me.name },
      to: to.map((r) => ({ id: r.id, name: r.name })),
      departments: depts.map((r) => ({ id: r.id, name: r.name })),
      body: draft.body,
      priority: draft.priority,
      attachments: draft.attachments,
      reply_to: draft.reply_to ?? null,
      recipients_count: answer.recipients?.length,
      sent_at: answer.sent_at ?? new Date().toISOString(),
      via: 'web',
    };
    this.messages.set(merge(this.messages.get(), [message]));
    const rows = (answer.recipients ?? []).map((r) => ({
      user_id: String(r.user_id),
      online: r.online,
      delivered_at: null,
      read_at: null,
      sms: null,
    }));
    this.setRows(id, rows, true);
    void this.fillNames(id);
    const th = this.thread.get();
    const selected = this.selection.get();
    const inThread = selected?.kind === 'thread' && to.length === 1 && depts.length === 0 && to[0].id === selected.peer.id;
    if (th && inThread) {
      if (!th.messages.some((m) => m.message_id === id)) this.thread.set({ ...th, messages: [...th.messages, message] });
    } else {
      this.selection.set({ kind: 'message', id });
    }
    return answer;
  }

  // --- search --------------------------------------------------------------------------

  async runSearch(query: string): Promise<void> {
    const q = query.trim();
    const request = ++this.searchRequest;
    if (!q) {
      this.search.set(null);
      return;
    }
    this.search.set({ ...emptyPaged(), query: q });
    try {
      const { messages, hasMore } = this.page(await this.history({ query: q }, PAGE), PAGE);
      if (request === this.searchRequest) this.search.set({ query: q, messages, hasMore, loading: false, error: null });
    } catch (err) {
      if (request === this.searchRequest) {
        this.search.set({ query: q, messages: [], hasMore: false, loading: false, error: ApiError.from(err) });
      }
    }
  }

  async searchMore(): Promise<void> {
    const s = this.search.get();
    if (!s || s.loading || s.messages.length === 0) return;
    const request = this.searchRequest;
    this.search.set({ ...s, loading: true });
    try {
      const before = s.messages[s.messages.length - 1].message_id;
      const { messages, hasMore } = this.page(await this.history({ query: s.query, before }, PAGE), PAGE);
      if (request !== this.searchRequest) return;
      this.search.set({ ...s, messages: merge(s.messages, messages), hasMore, loading: false, error: null });
    } catch (err) {
      if (request === this.searchRequest) this.search.set({ ...s, loading: false, error: ApiError.from(err) });
    }
  }

  // --- directory -----------------------------------------------------------------------

  async loadDepartments(): Promise<void> {
    if (this.departments.get().length > 0) return;
    try {
      const { departments } = await this.api.command<{ departments: Department[] }>('directory.departments', {});
      this.departments.set(departments ?? []);
    } catch {
      // the picker still finds people
    }
  }

  async findUsers(query: string): Promise<DirectoryUser[]> {
    const { users } = await this.api.command<{ users: DirectoryUser[] }>('directory.users', { query, limit: 20 });
    this.learn(users ?? []);
    return users ?? [];
  }

  departmentName(id: Id | null): string {
    return this.departments.get().find((d) => d.id === id)?.name ?? '';
  }

  // --- SMS preference ------------------------------------------------------------------

  async loadPrefs(): Promise<void> {
    try {
      const data = await this.api.command<Partial<PagerPrefs>>('prefs.get', {});
      this.prefs.set({ sms_fallback: data?.sms_fallback ?? 'offline', quiet_hours: data?.quiet_hours ?? null });
      this.prefsError.set(null);
    } catch (err) {
      this.prefsError.set(ApiError.from(err));
    }
  }

  async savePrefs(prefs: PagerPrefs): Promise<void> {
    await this.api.command('prefs.set', prefs);
    this.prefs.set(prefs);
    this.prefsError.set(null);
  }
}
