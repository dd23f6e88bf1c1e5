// Circulation (传阅): a notice or document sent to many at once, each recipient's state tracked
// (unopened → opened → confirmed). My inbox and what I sent, kept live by the circulation.*
// pushes; reading and confirming; for the sender a live status board with remind and recall.
// The views are in circulationView.ts.
import type { Connection } from './api';
import { chime, claimAlert, notify } from './alert';
import { recipientIds, type Recipient } from './compose';
import { ApiError } from './http';
import { t } from './i18n';
import { Store } from './store';
import { toast } from './toast';
import type {
  CircCounts,
  CircCreateAnswer,
  CircDetail,
  CircItem,
  CircOverdue,
  CircRecalled,
  CircReceived,
  CircRecipient,
  CircReminder,
  CircRemindAnswer,
  CircState,
  CircStatus,
  CircStatusEvent,
  FileInfo,
  Id,
  PersonRef,
  ServerEvent,
  User,
} from './types';

const PAGE = 30;
/** unopened ones counted for the badge */
const UNREAD_LIMIT = 100;
const POPUP_MAX = 4;
const POPUP_MS = 30_000;
const STATUS_DEBOUNCE_MS = 300;

export type Box = 'inbox' | 'sent';
export type Filter = CircState | 'all';
export const FILTERS: Filter[] = ['all', 'unopened', 'opened', 'confirmed'];

export interface CircList {
  items: CircItem[];
  filter: Filter;
  hasMore: boolean;
  loading: boolean;
  error: ApiError | null;
}

/** The circulation being read. */
export interface Reading {
  id: Id;
  detail: CircDetail | null;
  loading: boolean;
  /** recalled by its sender: it cannot be opened */
  recalled: boolean;
  error: ApiError | null;
}

/** The sender's status board of one circulation. */
export interface Board {
  status: CircStatus | null;
  loading: boolean;
  error: ApiError | null;
  /** who had not confirmed when the deadline passed (circulation.overdue) */
  overdue: PersonRef[] | null;
}

export type View = { kind: 'compose' } | { kind: 'item'; box: Box; id: Id } | null;

export interface CircPopup {
  key: string;
  kind: 'received' | 'reminder';
  circulation_id: Id;
  title: string;
  from: PersonRef;
  deadline: string | null;
}

export interface CircDraft {
  title: string;
  /** HTML from the editor */
  body: string;
  recipients: Recipient[];
  attachments: FileInfo[];
  /** ISO UTC */
  deadline: string | null;
}

const RANK: Record<CircState, number> = { unopened: 0, opened: 1, confirmed: 2 };

function rank(state: string | null | undefined): number {
  return state && state in RANK ? RANK[state as CircState] : -1;
}

function time(iso: string | null | undefined): number {
  const value = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(value) ? 0 : value;
}

/** Ids are opaque, but the server's grow: newest first by time, then by id. */
function newestFirst(a: CircItem, b: CircItem): number {
  const byTime = time(b.sent_at) - time(a.sent_at);
  if (byTime !== 0) return byTime;
  return b.circulation_id.localeCompare(a.circulation_id, undefined, { numeric: true });
}

/** The pushes that change my inbox and its unopened count. */
const INBOX_CHANGES = ['circulation.received', 'circulation.recalled', 'circulation.status'] as const;

/** A push's circulation id, as a string. */
function circId(event: ServerEvent): Id | null {
  const id = (event.data as { circulation_id?: unknown } | undefined)?.circulation_id;
  return id === undefined || id === null ? null : String(id);
}

function merge(old: CircItem[], fresh: CircItem[]): CircItem[] {
  const byId = new Map(old.map((c) => [c.circulation_id, c]));
  for (const c of fresh) byId.set(c.circulation_id, c);
  return [...byId.values()].sort(newestFirst);
}

export function countRows(rows: CircRecipient[]): CircCounts {
  const counts: CircCounts = { unopened: 0, opened: 0, confirmed: 0 };
  for (const r of rows) if (r.state in counts) counts[r.state] += 1;
  return counts;
}

export function totalOf(counts: CircCounts | undefined): number {
  return counts ? counts.unopened + counts.opened + counts.confirmed : 0;
}

/** Deadline wording class: `overdue` (passed, not done), `near` (within a day), or plain. */
export function deadlineState(deadline: string | null | undefined, done: boolean, now = Date.now()): 'none' | 'ok' | 'near' | 'overdue' {
  if (!deadline) return 'none';
  if (done) return 'ok';
  const left = time(deadline) - now;
  if (left < 0) return 'overdue';
  if (left < 24 * 3_600_000) return 'near';
  return 'ok';
}

function person(raw: Partial<PersonRef> | null | undefined): PersonRef {
  return { id: String(raw?.id ?? ''), name: raw?.name ?? '' };
}

function normalizeItem(raw: Partial<CircItem> & { circulation_id: Id }): CircItem {
  return {
    ...raw,
    circulation_id: String(raw.circulation_id),
    title: raw.title ?? '',
    from: person(raw.from),
    deadline: raw.deadline ?? null,
    sent_at: raw.sent_at ?? new Date().toISOString(),
    recalled: Boolean(raw.recalled),
  };
}

function normalizeRow(raw: Partial<CircRecipient> & { user_id: Id }): CircRecipient {
  return {
    user_id: String(raw.user_id),
    name: raw.name ?? '',
    state: rank(raw.state) >= 0 ? (raw.state as CircState) : 'unopened',
    opened_at: raw.opened_at ?? null,
    confirmed_at: raw.confirmed_at ?? null,
    comment: raw.comment ?? null,
  };
}

/** Keep the further state of each recipient: a push may have overtaken a fetch. */
function mergeRows(old: CircRecipient[], fresh: CircRecipient[]): CircRecipient[] {
  const before = new Map(old.map((r) => [r.user_id, r]));
  return fresh.map((r) => {
    const prev = before.get(r.user_id);
    return prev && rank(prev.state) > rank(r.state) ? { ...r, ...prev, name: r.name || prev.name } : r;
  });
}

const emptyList = (filter: Filter = 'all'): CircList => ({ items: [], filter, hasMore: false, loading: false, error: null });
const emptyBoard = (): Board => ({ status: null, loading: false, error: null, overdue: null });

export class CirculationModel {
  readonly lists: Record<Box, Store<CircList>> = { inbox: new Store(emptyList()), sent: new Store(emptyList()) };
  readonly tab = new Store<Box>('inbox');
  readonly view = new Store<View>(null);
  readonly reading = new Store<Reading | null>(null);
  readonly boards = new Store<Record<Id, Board>>({});
  readonly popups = new Store<CircPopup[]>([]);
  /** ids of inbox circulations still unopened (not recalled) */
  readonly unopened = new Store<Set<Id>>(new Set());
  readonly unread = new Store<number>(0);
  /** false once the server answers that it knows no circulation commands */
  readonly available = new Store<boolean>(true);

  private readonly listRequest: Record<Box, number> = { inbox: 0, sent: 0 };
  private unreadRequest = 0;
  /** opened here: a count fetched meanwhile must not bring them back */
  private readonly openedHere = new Set<Id>();
  /** circulation.open does not say when I confirmed; remember it from circulation.confirm */
  private readonly confirmedAt = new Map<Id, string>();
  private readonly statusTimers = new Map<Id, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly api: Connection,
    private readonly me: User,
  ) {
    this.unopened.subscribe((ids) => this.unread.set(ids.size));
    api.on('circulation.received', (data: CircReceived) => this.received(data));
    api.on('circulation.status', (data: CircStatusEvent) => this.statusArrived(data));
    api.on('circulation.reminder', (data: CircReminder, event: ServerEvent) => this.reminded(data, event));
    api.on('circulation.recalled', (data: CircRecalled) => this.recalledArrived(data));
    api.on('circulation.overdue', (data: CircOverdue) => this.overdueArrived(data));
    // After every (re)connect, reset included: the stream is in step by then (see onConnected).
    api.onConnected(() => void this.reload());
  }

  find(id: Id): CircItem | undefined {
    return (
      this.lists.inbox.get().items.find((c) => c.circulation_id === id) ??
      this.lists.sent.get().items.find((c) => c.circulation_id === id)
    );
  }

  private patchItems(box: Box, id: Id, change: (c: CircItem) => CircItem): void {
    this.lists[box].update((list) => {
      if (!list.items.some((c) => c.circulation_id === id)) return list;
      return { ...list, items: list.items.map((c) => (c.circulation_id === id ? change(c) : c)) };
    });
  }

  private setUnopened(id: Id, unopened: boolean): void {
    const ids = this.unopened.get();
    if (ids.has(id) === unopened) return;
    const next = new Set(ids);
    if (unopened) next.add(id);
    else next.delete(id);
    this.unopened.set(next);
  }

  private setBoard(id: Id, change: (b: Board) => Board): void {
    this.boards.update((all) => ({ ...all, [id]: change(all[id] ?? emptyBoard()) }));
  }

  private noteFailure(err: unknown): ApiError {
    const error = ApiError.from(err);
    // An unknown command is answered not_found: this server has no circulation yet.
    if (error.code === 'not_found' && /unknown command/i.test(error.message)) this.available.set(false);
    return error;
  }

  // --- loading ---------------------------------------------------------------------------

  async reload(): Promise<void> {
    void this.loadUnread();
    void this.loadList('inbox');
    void this.loadList('sent');
    const view = this.view.get();
    // Boards of circulations not on screen may have moved on without us.
    this.boards.update((all) => (view?.kind === 'item' && all[view.id] ? { [view.id]: all[view.id] } : {}));
    if (view?.kind === 'item') {
      if (!this.reading.get()?.recalled) void this.openItem(view.id);
      if (view.box === 'sent') void this.loadStatus(view.id);
    }
  }

  async loadUnread(): Promise<void> {
    const request = ++this.unreadRequest;
    try {
      const { answer, meanwhile } = await this.api.snapshot<{ circulations?: CircItem[] }>(
        'circulation.list',
        { box: 'inbox', state: 'unopened', limit: UNREAD_LIMIT },
        INBOX_CHANGES,
      );
      if (request !== this.unreadRequest) return; // a newer count is on its way
      const ids = new Set(
        (answer?.circulations ?? [])
          .filter((c) => c && c.circulation_id !== undefined && !c.recalled)
          .map((c) => String(c.circulation_id)),
      );
      // The count was read at some point before it arrived; what was pushed meanwhile may be
      // newer than it, so lay it again (opened ones, here or in another tab, are dropped below).
      for (const event of meanwhile) {
        const id = circId(event);
        if (id === null) continue;
        if (event.type === 'circulation.received') ids.add(id);
        else if (event.type === 'circulation.recalled') ids.delete(id);
      }
      for (const id of this.openedHere) ids.delete(id);
      this.unopened.set(ids);
      this.available.set(true);
    } catch (err) {
      this.noteFailure(err);
    }
  }

  /** The first page of a box (again), or the next one with `more`. */
  async loadList(box: Box, more = false): Promise<void> {
    const current = this.lists[box].get();
    const last = current.items[current.items.length - 1];
    if (more && (current.loading || !last)) return;
    const request = ++this.listRequest[box];
    this.lists[box].set({ ...current, loading: true });
    const payload: Record<string, unknown> = { box, limit: PAGE };
    if (current.filter !== 'all') payload.state = current.filter;
    if (more) payload.before = last.circulation_id;
    try {
      const { answer, meanwhile } = await this.api.snapshot<{ circulations?: CircItem[]; has_more?: boolean }>(
        'circulation.list',
        payload,
        INBOX_CHANGES,
      );
      if (request !== this.listRequest[box]) return;
      const items = (Array.isArray(answer?.circulations) ? answer.circulations : [])
        .filter((c) => c && c.circulation_id !== undefined)
        .map(normalizeItem)
        .map((c) => (this.openedHere.has(c.circulation_id) && c.my_state === 'unopened' ? { ...c, my_state: 'opened' as const } : c));
      const list = this.lists[box].get();
      // Keep what was pushed or paged in meanwhile; the server's copy wins where both exist,
      // except over a recall pushed while it was on its way (the copy may predate it).
      const recalled = new Set(meanwhile.filter((e) => e.type === 'circulation.recalled').map(circId));
      this.lists[box].set({
        ...list,
        items: merge(list.items, items).map((c) => (recalled.has(c.circulation_id) && !c.recalled ? { ...c, recalled: true } : c)),
        hasMore: answer?.has_more ?? items.length >= PAGE,
        loading: false,
        error: null,
      });
      this.available.set(true);
    } catch (err) {
      if (request !== this.listRequest[box]) return;
      const error = this.noteFailure(err);
      this.lists[box].update((list) => ({ ...list, loading: false, error }));
    }
  }

  setFilter(box: Box, filter: Filter): void {
    if (this.lists[box].get().filter === filter) return;
    this.lists[box].set(emptyList(filter));
    void this.loadList(box);
  }

  // --- selecting and reading ---------------------------------------------------------------

  compose(): void {
    this.view.set({ kind: 'compose' });
  }

  close(): void {
    this.view.set(null);
    this.reading.set(null);
  }

  /** Show one circulation: its text (opening it, for a recipient) and, when I sent it, its board. */
  select(box: Box, id: Id): void {
    this.tab.set(box);
    this.view.set({ kind: 'item', box, id });
    this.popups.update((list) => list.filter((p) => p.circulation_id !== id));
    void this.openItem(id);
    if (box === 'sent') void this.loadStatus(id);
  }

  private async openItem(id: Id): Promise<void> {
    const known = this.lists.inbox.get().items.find((c) => c.circulation_id === id);
    const mine = this.lists.sent.get().items.some((c) => c.circulation_id === id);
    const prev = this.reading.get();
    if (known?.recalled && !mine) {
      this.reading.set({ id, detail: null, loading: false, recalled: true, error: null });
      return;
    }
    this.reading.set({
      id,
      detail: prev?.id === id ? prev.detail : null,
      loading: true,
      recalled: prev?.id === id ? prev.recalled : false,
      error: null,
    });
    try {
      const raw = await this.api.command<CircDetail>('circulation.open', { circulation_id: id });
      const detail: CircDetail = {
        ...raw,
        circulation_id: String(raw.circulation_id ?? id),
        title: raw.title ?? '',
        body: raw.body ?? '',
        from: person(raw.from),
        deadline: raw.deadline ?? null,
        attachments: Array.isArray(raw.attachments)
          ? raw.attachments.filter((a) => a && a.file_id !== undefined).map((a) => ({ ...a, file_id: String(a.file_id) }))
          : [],
        recalled: Boolean(raw.recalled),
        my_state: rank(raw.my_state) >= 0 ? raw.my_state : null,
        my_comment: raw.my_comment ?? null,
        confirmed_at: raw.my_confirmed_at ?? this.confirmedAt.get(id) ?? null,
      };
      if (this.reading.get()?.id !== id) return; // another one was picked meanwhile
      this.reading.set({ id, detail, loading: false, recalled: detail.recalled, error: null });
      if (detail.my_state) {
        this.openedHere.add(id);
        this.setUnopened(id, false);
        this.patchItems('inbox', id, (c) => (rank(c.my_state) < rank(detail.my_state) ? { ...c, my_state: detail.my_state } : c));
      }
      if (detail.recalled) this.markRecalled(id);
    } catch (err) {
      const error = this.noteFailure(err);
      if (this.reading.get()?.id !== id) return;
      if (error.code === 'conflict') {
        this.markRecalled(id);
        this.reading.set({ id, detail: null, loading: false, recalled: true, error: null });
      } else {
        this.reading.update((r) => (r?.id === id ? { ...r, loading: false, error } : r));
      }
    }
  }

  async confirm(id: Id, comment: string): Promise<void> {
    const payload: Record<string, unknown> = { circulation_id: id };
    if (comment) payload.comment = comment;
    let answer: { state?: string; confirmed_at?: string };
    try {
      answer = await this.api.command('circulation.confirm', payload);
    } catch (err) {
      const error = ApiError.from(err);
      // Recalled (or confirmed elsewhere) while it lay open here: see where it stands now.
      if (error.code === 'conflict') void this.openItem(id);
      throw error;
    }
    const at = answer?.confirmed_at ?? new Date().toISOString();
    this.confirmedAt.set(id, at);
    this.openedHere.add(id);
    this.setUnopened(id, false);
    this.reading.update((r) =>
      r?.id === id && r.detail
        ? { ...r, detail: { ...r.detail, my_state: 'confirmed', my_comment: comment || null, confirmed_at: at } }
        : r,
    );
    this.patchItems('inbox', id, (c) => ({ ...c, my_state: 'confirmed' }));
  }

  // --- the sender's side -------------------------------------------------------------------

  async loadStatus(id: Id): Promise<void> {
    this.setBoard(id, (b) => ({ ...b, loading: true }));
    try {
      const raw = await this.api.command<CircStatus>('circulation.status', { circulation_id: id });
      const fresh = (Array.isArray(raw?.recipients) ? raw.recipients : [])
        .filter((r) => r && r.user_id !== undefined)
        .map(normalizeRow);
      this.setBoard(id, (b) => {
        const recipients = mergeRows(b.status?.recipients ?? [], fresh);
        const counts = recipients.length > 0 ? countRows(recipients) : (raw?.counts ?? countRows([]));
        return {
          ...b,
          loading: false,
          error: null,
          status: { circulation_id: id, counts, recipients, remind_allowed_at: raw?.remind_allowed_at ?? null },
        };
      });
      const counts = this.boards.get()[id]?.status?.counts;
      if (counts) this.patchItems('sent', id, (c) => ({ ...c, counts }));
    } catch (err) {
      const error = this.noteFailure(err);
      this.setBoard(id, (b) => ({ ...b, loading: false, error }));
    }
  }

  private loadStatusSoon(id: Id): void {
    clearTimeout(this.statusTimers.get(id));
    this.statusTimers.set(
      id,
      setTimeout(() => {
        this.statusTimers.delete(id);
        void this.loadStatus(id);
      }, STATUS_DEBOUNCE_MS),
    );
  }

  /** Remind the unconfirmed. Throws ApiError; a `rate_limited` one still moves the countdown. */
  async remind(id: Id): Promise<CircRemindAnswer> {
    const setAllowed = (at: string | null) =>
      this.setBoard(id, (b) => (b.status ? { ...b, status: { ...b.status, remind_allowed_at: at } } : b));
    try {
      const answer = await this.api.command<CircRemindAnswer>('circulation.remind', { circulation_id: id });
      setAllowed(answer?.remind_allowed_at ?? null);
      return answer;
    } catch (err) {
      const error = ApiError.from(err);
      const details = error.details as { retry_after_s?: unknown; remind_allowed_at?: unknown } | null;
      if (error.code === 'rate_limited') {
        if (typeof details?.remind_allowed_at === 'string') setAllowed(details.remind_allowed_at);
        else if (typeof details?.retry_after_s === 'number') {
          setAllowed(new Date(Date.now() + details.retry_after_s * 1000).toISOString());
        }
      }
      throw error;
    }
  }

  async recall(id: Id): Promise<void> {
    await this.api.command('circulation.recall', { circulation_id: id });
    this.patchItems('sent', id, (c) => ({ ...c, recalled: true }));
    this.reading.update((r) => (r?.id === id && r.detail ? { ...r, detail: { ...r.detail, recalled: true } } : r));
  }

  async create(draft: CircDraft, clientMsgId: string): Promise<CircCreateAnswer> {
    const { to, departments } = recipientIds(draft.recipients);
    const payload: Record<string, unknown> = { title: draft.title, body: draft.body, client_msg_id: clientMsgId };
    if (to.length) payload.to = to;
    if (departments.length) payload.departments = departments;
    if (draft.attachments.length) payload.attachments = draft.attachments.map((a) => a.file_id);
    if (draft.deadline) payload.deadline = draft.deadline;
    const answer = await this.api.command<CircCreateAnswer>('circulation.create', payload);
    const id = String(answer.circulation_id);
    const count = Number(answer.recipients_count) || 0;
    const item: CircItem = {
      circulation_id: id,
      title: draft.title,
      from: { id: this.me.id, name: this.me.name },
      deadline: draft.deadline,
      sent_at: new Date().toISOString(),
      recalled: false,
      counts: { unopened: count, opened: 0, confirmed: 0 },
    };
    const sent = this.lists.sent.get();
    if (sent.filter === 'all' || sent.filter === 'unopened') this.lists.sent.set({ ...sent, items: merge(sent.items, [item]) });
    this.select('sent', id);
    return answer;
  }

  // --- live pushes -------------------------------------------------------------------------

  private received(data: CircReceived): void {
    if (!data || data.circulation_id === undefined) return;
    const item = normalizeItem({ ...data, recalled: false, my_state: 'unopened' });
    const id = item.circulation_id;
    const inbox = this.lists.inbox.get();
    const known = inbox.items.some((c) => c.circulation_id === id);
    if (!known && (inbox.filter === 'all' || inbox.filter === 'unopened')) {
      this.lists.inbox.set({ ...inbox, items: merge(inbox.items, [item]) });
    }
    if (!this.openedHere.has(id)) this.setUnopened(id, true);
    if (known || item.from.id === this.me.id) return;
    this.popup('received', item, `circ-${id}`);
  }

  private reminded(data: CircReminder, event: ServerEvent): void {
    if (!data || data.circulation_id === undefined) return;
    const item = normalizeItem({ ...data, recalled: false });
    this.popup('reminder', item, `circ-remind-${item.circulation_id}-${event.seq ?? event.at}`);
  }

  private popup(kind: CircPopup['kind'], item: CircItem, alertId: string): void {
    const id = item.circulation_id;
    const entry: CircPopup = { key: alertId, kind, circulation_id: id, title: item.title, from: item.from, deadline: item.deadline };
    this.popups.update((list) => [entry, ...list.filter((p) => p.circulation_id !== id)].slice(0, POPUP_MAX));
    setTimeout(() => this.dismissPopup(entry.key), POPUP_MS);
    claimAlert(alertId, () => {
      chime(kind === 'reminder');
      const title =
        kind === 'reminder' ? t('circ.notify_reminder', { name: item.from.name }) : t('circ.notify_title', { name: item.from.name });
      notify(title, item.title, alertId, false, () => {
        location.hash = '#circulation';
        this.select('inbox', id);
      });
    });
  }

  dismissPopup(key: string): void {
    this.popups.update((list) => list.filter((p) => p.key !== key));
  }

  private markRecalled(id: Id): void {
    this.setUnopened(id, false);
    this.popups.update((list) => list.filter((p) => p.circulation_id !== id));
    this.patchItems('inbox', id, (c) => ({ ...c, recalled: true }));
  }

  private recalledArrived(data: CircRecalled): void {
    if (!data || data.circulation_id === undefined) return;
    const id = String(data.circulation_id);
    const title = this.find(id)?.title;
    this.markRecalled(id);
    this.reading.update((r) => (r?.id === id ? { id, detail: null, loading: false, recalled: true, error: null } : r));
    if (title) toast(t('circ.recalled_toast', { title }), 'info');
  }

  private statusArrived(data: CircStatusEvent): void {
    if (!data || data.circulation_id === undefined || data.user_id === undefined) return;
    const id = String(data.circulation_id);
    const userId = String(data.user_id);
    if (userId === this.me.id) {
      // My own change, made in another tab: the inbox follows.
      this.openedHere.add(id);
      this.setUnopened(id, false);
      this.patchItems('inbox', id, (c) => (rank(c.my_state) < rank(data.state) ? { ...c, my_state: data.state } : c));
      return;
    }
    const status = this.boards.get()[id]?.status;
    const row = status?.recipients.find((r) => r.user_id === userId);
    if (!status || !row) {
      // Not on a board we hold: fetch the whole picture (debounced) to get the counts right.
      this.loadStatusSoon(id);
      return;
    }
    if (rank(data.state) <= rank(row.state)) return;
    const next: CircRecipient = {
      ...row,
      state: data.state,
      opened_at: data.state === 'opened' ? data.at : row.opened_at,
      confirmed_at: data.state === 'confirmed' ? data.at : row.confirmed_at,
      comment: data.comment ?? row.comment,
    };
    const recipients = status.recipients.map((r) => (r.user_id === userId ? next : r));
    const counts = countRows(recipients);
    this.setBoard(id, (b) => ({ ...b, status: { ...status, recipients, counts } }));
    this.patchItems('sent', id, (c) => ({ ...c, counts }));
  }

  private overdueArrived(data: CircOverdue): void {
    if (!data || data.circulation_id === undefined) return;
    const id = String(data.circulation_id);
    const unconfirmed = (Array.isArray(data.unconfirmed) ? data.unconfirmed : []).map(person);
    this.setBoard(id, (b) => ({ ...b, overdue: unconfirmed }));
    // Its deadline now reads "overdue" wherever it is shown.
    this.patchItems('sent', id, (c) => ({ ...c }));
    this.reading.update((r) => (r?.id === id ? { ...r } : r));
    const title = this.find(id)?.title ?? '';
    toast(t('circ.overdue_toast', { title, n: unconfirmed.length }), 'error', 10_000);
  }
}
