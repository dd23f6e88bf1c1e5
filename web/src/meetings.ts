// Meetings (会议): chat-room meetings that end with minutes. My meetings (open / closed, paged
// with `before`), the room I am in (transcript in the order received, marks, who is present,
// the chair), saying something (idempotent per message), the chair's marks, handover and close,
// the minutes, per-meeting unread counts for messages that arrive while I am not looking at the
// room, and the pop-ups for invitations and action items assigned to me. The views are in
// meetingsView.ts.
import type { Connection } from './api';
import { chime, claimAlert, notify } from './alert';
import { newClientMsgId } from './compose';
import { downloadFrom } from './files';
import { ApiError } from './http';
import { t } from './i18n';
import { Store } from './store';
import { toast } from './toast';
import type {
  Id,
  MarkKind,
  MeetingActionAssigned,
  MeetingChair,
  MeetingClosed,
  MeetingDetail,
  MeetingInvited,
  MeetingItem,
  MeetingJoinAnswer,
  MeetingMark,
  MeetingMarked,
  MeetingPresence,
  MeetingSaid,
  Minutes,
  PersonRef,
  ServerEvent,
  User,
} from './types';

const PAGE = 30;
const POPUP_MAX = 4;
const INVITE_POPUP_MS = 60_000;

export type MeetState = 'open' | 'closed';
export const STATES: MeetState[] = ['open', 'closed'];

export interface MeetList {
  items: MeetingItem[];
  hasMore: boolean;
  loading: boolean;
  error: ApiError | null;
}

/** Something I said that the server has not answered yet, or refused. */
export interface Pending {
  client_msg_id: string;
  body: string;
  error: ApiError | null;
}

/** The meeting on screen: the live room while open, its minutes once closed. */
export interface Room {
  id: Id;
  meeting: MeetingDetail | null;
  /** the transcript in the order received */
  messages: MeetingSaid[];
  /** by message_id, in the order marked */
  marks: Record<Id, MeetingMark[]>;
  present: Set<Id>;
  /** this socket is subscribed to the room */
  joined: boolean;
  loading: boolean;
  error: ApiError | null;
  pending: Pending[];
  /** set once closed */
  minutes: Minutes | null;
  minutesError: ApiError | null;
}

export type View = { kind: 'new' } | { kind: 'room'; id: Id } | null;

export interface MeetPopup {
  key: string;
  kind: 'invited' | 'action';
  meeting_id: Id;
  title: string;
  /** invitation: the chair; action: who assigned it */
  from: PersonRef;
  /** invitation: the agenda; action: what is to be done */
  body: string;
  /** invitation: starts_at; action: due */
  at: string | null;
}

export interface MeetDraft {
  title: string;
  agenda: string;
  participants: Id[];
  /** ISO UTC */
  starts_at: string | null;
}

function person(raw: Partial<PersonRef> | null | undefined): PersonRef {
  return { id: String(raw?.id ?? ''), name: raw?.name ?? '' };
}

function normalizeItem(raw: Partial<MeetingItem> & { meeting_id: Id }): MeetingItem {
  return {
    meeting_id: String(raw.meeting_id),
    title: raw.title ?? '',
    chair: person(raw.chair),
    starts_at: raw.starts_at ?? null,
    created_at: raw.created_at ?? new Date().toISOString(),
    closed_at: raw.closed_at ?? null,
  };
}

function normalizeSaid(raw: Partial<MeetingSaid> & { message_id: Id }): MeetingSaid {
  return {
    meeting_id: String(raw.meeting_id ?? ''),
    message_id: String(raw.message_id),
    from: person(raw.from),
    body: raw.body ?? '',
    at: raw.at ?? new Date().toISOString(),
  };
}

function normalizeMark(raw: Partial<MeetingMark> & { mark_id: Id; message_id: Id }): MeetingMark {
  return {
    mark_id: String(raw.mark_id),
    message_id: String(raw.message_id),
    kind: raw.kind === 'action' ? 'action' : 'decision',
    assignee: raw.assignee ? person(raw.assignee) : null,
    due: raw.due ?? null,
    at: raw.at ?? new Date().toISOString(),
  };
}

/** Ids are opaque, but the server's grow (and meeting.list pages by them): newest first. */
function compareIds(a: Id, b: Id): number {
  return a.localeCompare(b, undefined, { numeric: true });
}

function newestFirst(a: MeetingItem, b: MeetingItem): number {
  return compareIds(b.meeting_id, a.meeting_id);
}

function mergeItems(old: MeetingItem[], fresh: MeetingItem[]): MeetingItem[] {
  const byId = new Map(old.map((m) => [m.meeting_id, m]));
  for (const m of fresh) byId.set(m.meeting_id, m);
  return [...byId.values()].sort(newestFirst);
}

function addMark(marks: Record<Id, MeetingMark[]>, mark: MeetingMark): Record<Id, MeetingMark[]> {
  const list = marks[mark.message_id] ?? [];
  if (list.some((k) => k.mark_id === mark.mark_id)) return marks;
  return { ...marks, [mark.message_id]: [...list, mark] };
}

/** The pushes that add a meeting to my lists or move it between them. */
const LIST_CHANGES = ['meeting.invited', 'meeting.closed'] as const;

const emptyList = (): MeetList => ({ items: [], hasMore: false, loading: false, error: null });

function emptyRoom(id: Id): Room {
  return {
    id,
    meeting: null,
    messages: [],
    marks: {},
    present: new Set(),
    joined: false,
    loading: true,
    error: null,
    pending: [],
    minutes: null,
    minutesError: null,
  };
}

export class MeetingsModel {
  readonly lists: Record<MeetState, Store<MeetList>> = { open: new Store(emptyList()), closed: new Store(emptyList()) };
  readonly tab = new Store<MeetState>('open');
  readonly view = new Store<View>(null);
  readonly room = new Store<Room | null>(null);
  /** messages that arrived while I was not looking at their room, per meeting */
  readonly unreadBy = new Store<Record<Id, number>>({});
  readonly unread = new Store<number>(0);
  readonly popups = new Store<MeetPopup[]>([]);
  /** whether the meetings panel is on screen (set by the view) */
  readonly visible = new Store<boolean>(false);

  private readonly listRequest: Record<MeetState, number> = { open: 0, closed: 0 };
  /** meeting.message pushes for the room that came in while a join was under way */
  private joinBuffer: MeetingSaid[] | null = null;
  private joinRequest = 0;

  constructor(
    private readonly api: Connection,
    private readonly me: User,
  ) {
    this.unreadBy.subscribe((by) => this.unread.set(Object.values(by).reduce((n, c) => n + c, 0)));
    this.visible.subscribe(() => this.markSeen());
    api.on('meeting.invited', (data: MeetingInvited) => this.invited(data));
    api.on('meeting.message', (data: MeetingSaid) => this.said(data));
    api.on('meeting.marked', (data: MeetingMarked) => this.marked(data));
    api.on('meeting.action_assigned', (data: MeetingActionAssigned) => this.assigned(data));
    api.on('meeting.chair', (data: MeetingChair) => this.chairChanged(data));
    api.on('meeting.closed', (data: MeetingClosed) => this.closedArrived(data));
    api.on('meeting.presence', (data: MeetingPresence) => this.presence(data));
    // Room subscriptions are per connection: join again after every reconnect (and reset).
    api.onConnected(() => void this.reload());
  }

  get myId(): Id {
    return this.me.id;
  }

  find(id: Id): MeetingItem | undefined {
    return this.lists.open.get().items.find((m) => m.meeting_id === id) ?? this.lists.closed.get().items.find((m) => m.meeting_id === id);
  }

  isChair(room: Room | null): boolean {
    return Boolean(room?.meeting && room.meeting.chair.id === this.me.id);
  }

  private patchRoom(id: Id, change: (r: Room) => Room): void {
    this.room.update((r) => (r?.id === id ? change(r) : r));
  }

  private patchItem(id: Id, change: (m: MeetingItem) => MeetingItem): void {
    for (const state of STATES) {
      this.lists[state].update((list) =>
        list.items.some((m) => m.meeting_id === id)
          ? { ...list, items: list.items.map((m) => (m.meeting_id === id ? change(m) : m)) }
          : list,
      );
    }
  }

  /** Move a meeting to the closed list. */
  private closeItem(id: Id, closedAt: string): void {
    const item = this.find(id);
    this.lists.open.update((list) => ({ ...list, items: list.items.filter((m) => m.meeting_id !== id) }));
    if (item) this.lists.closed.update((list) => ({ ...list, items: mergeItems(list.items, [{ ...item, closed_at: item.closed_at ?? closedAt }]) }));
  }

  /** Whether I am looking at this meeting's room right now. */
  private looking(id: Id): boolean {
    return this.visible.get() && this.room.get()?.id === id;
  }

  private setUnread(id: Id, change: (n: number) => number): void {
    this.unreadBy.update((by) => {
      const n = change(by[id] ?? 0);
      if (n === (by[id] ?? 0)) return by;
      const next = { ...by };
      if (n > 0) next[id] = n;
      else delete next[id];
      return next;
    });
  }

  /** The room on screen has been seen. */
  markSeen(): void {
    const r = this.room.get();
    if (r && this.visible.get()) this.setUnread(r.id, () => 0);
  }

  // --- loading ---------------------------------------------------------------------------

  async reload(): Promise<void> {
    void this.loadList('open');
    void this.loadList('closed');
    const r = this.room.get();
    if (r) void this.loadRoom(r.id);
  }

  async loadList(state: MeetState, more = false): Promise<void> {
    const current = this.lists[state].get();
    const last = current.items[current.items.length - 1];
    if (more && (current.loading || !last)) return;
    const request = ++this.listRequest[state];
    this.lists[state].set({ ...current, loading: true });
    const payload: Record<string, unknown> = { state, limit: PAGE };
    if (more) payload.before = last.meeting_id;
    try {
      const { answer, meanwhile } = await this.api.snapshot<{ meetings?: MeetingItem[] }>(
        'meeting.list',
        payload,
        LIST_CHANGES,
      );
      if (request !== this.listRequest[state]) return;
      const items = (Array.isArray(answer?.meetings) ? answer.meetings : []).filter((m) => m && m.meeting_id !== undefined).map(normalizeItem);
      const list = this.lists[state].get();
      // A refetch of the first page is the truth down to its oldest item (what closed meanwhile
      // is gone from "open"); what was paged in below it stays.
      const oldest = items[items.length - 1]?.meeting_id;
      let kept: MeetingItem[] = [];
      if (more) kept = list.items;
      else if (oldest !== undefined) kept = list.items.filter((m) => compareIds(m.meeting_id, oldest) < 0);
      const before = [...list.items, ...this.lists.open.get().items];
      this.lists[state].set({
        items: this.layAgain(state, mergeItems(kept, items), meanwhile, before),
        hasMore: items.length >= PAGE,
        loading: false,
        error: null,
      });
    } catch (err) {
      if (request !== this.listRequest[state]) return;
      const error = ApiError.from(err);
      this.lists[state].update((list) => ({ ...list, loading: false, error }));
    }
  }

  /**
   * The list as the answer gave it, with the invitations and closings pushed while it was on
   * its way laid over it again, in order: the answer may have been read before them.
   */
  private layAgain(state: MeetState, items: MeetingItem[], meanwhile: ServerEvent[], before: MeetingItem[]): MeetingItem[] {
    let out = items;
    for (const event of meanwhile) {
      const data = event.data as Partial<MeetingInvited> | undefined;
      if (!data || data.meeting_id === undefined) continue;
      const id = String(data.meeting_id);
      const listed = out.find((m) => m.meeting_id === id);
      const known = listed ?? before.find((m) => m.meeting_id === id);
      if (event.type === 'meeting.invited') {
        if (state === 'open' && !listed) {
          out = mergeItems(out, [known ?? normalizeItem({ ...data, meeting_id: id, closed_at: null })]);
        }
      } else if (event.type === 'meeting.closed') {
        if (state === 'open') out = out.filter((m) => m.meeting_id !== id);
        else if (known) out = mergeItems(out, [{ ...known, closed_at: known.closed_at ?? event.at }]);
      }
    }
    return out;
  }

  /** Join (again) or, once closed, fetch the minutes. */
  private async loadRoom(id: Id): Promise<void> {
    const r = this.room.get();
    if (r?.id !== id) return;
    if (r.minutes || r.meeting?.closed_at || this.find(id)?.closed_at) {
      await this.loadMinutes(id);
      return;
    }
    const request = ++this.joinRequest;
    this.joinBuffer = [];
    this.patchRoom(id, (room) => ({ ...room, loading: true }));
    try {
      const answer = await this.api.command<MeetingJoinAnswer>('meeting.join', { meeting_id: id });
      if (request !== this.joinRequest || this.room.get()?.id !== id) {
        // Left (or moved on) while joining: do not stay in the room unseen.
        if (this.room.get()?.id !== id && this.api.connected && !answer?.meeting?.closed_at) {
          this.api.command('meeting.leave', { meeting_id: id }).catch(() => undefined);
        }
        return;
      }
      const buffered = this.joinBuffer ?? [];
      this.joinBuffer = null;
      const meeting: MeetingDetail = {
        ...normalizeItem(answer.meeting),
        agenda: answer.meeting?.agenda ?? '',
        participants: (answer.meeting?.participants ?? []).map(person),
        circulation_id: answer.meeting?.circulation_id ? String(answer.meeting.circulation_id) : null,
      };
      const messages = (answer.messages ?? []).filter((m) => m && m.message_id !== undefined).map(normalizeSaid);
      const known = new Set(messages.map((m) => m.message_id));
      // What was pushed while the join was under way and is not in its answer comes after it.
      for (const m of buffered) if (!known.has(m.message_id)) messages.push(m);
      this.patchRoom(id, (room) => {
        let marks: Record<Id, MeetingMark[]> = {};
        for (const k of (answer.marks ?? []).map(normalizeMark)) marks = addMark(marks, k);
        for (const list of Object.values(room.marks)) for (const k of list) marks = addMark(marks, k);
        return {
          ...room,
          meeting,
          messages,
          marks,
          present: new Set((answer.present ?? []).map(String)),
          joined: this.api.connected && !meeting.closed_at,
          loading: false,
          error: null,
        };
      });
      this.patchItem(id, (m) => ({ ...m, title: meeting.title, chair: meeting.chair, closed_at: meeting.closed_at }));
      if (meeting.closed_at) {
        this.closeItem(id, meeting.closed_at);
        await this.loadMinutes(id);
      }
    } catch (err) {
      if (request !== this.joinRequest) return;
      this.joinBuffer = null;
      const error = ApiError.from(err);
      this.patchRoom(id, (room) => ({ ...room, loading: false, error }));
    }
  }

  async loadMinutes(id: Id): Promise<void> {
    this.patchRoom(id, (room) => ({ ...room, loading: !room.minutes, minutesError: null }));
    try {
      const answer = await this.api.command<{ minutes: Minutes }>('meeting.minutes', { meeting_id: id });
      this.showMinutes(id, answer.minutes);
    } catch (err) {
      const error = ApiError.from(err);
      this.patchRoom(id, (room) => ({ ...room, loading: false, minutesError: error }));
    }
  }

  private showMinutes(id: Id, minutes: Minutes): void {
    this.patchRoom(id, (room) => ({ ...room, minutes, joined: false, loading: false, minutesError: null, pending: [] }));
    this.closeItem(id, minutes.ended_at);
    // The meeting on screen is now listed among the closed ones: show that list.
    if (this.room.get()?.id === id) this.tab.set('closed');
  }

  // --- entering and leaving ----------------------------------------------------------------

  compose(): void {
    this.leaveRoom();
    this.view.set({ kind: 'new' });
  }

  /** Enter a meeting's room (or see its minutes once closed). */
  enter(id: Id): void {
    const current = this.room.get();
    this.view.set({ kind: 'room', id });
    this.popups.update((list) => list.filter((p) => !(p.kind === 'invited' && p.meeting_id === id)));
    if (current?.id === id) {
      this.markSeen();
      if (!current.joined && !current.minutes) void this.loadRoom(id);
      return;
    }
    this.leaveRoom();
    const item = this.find(id);
    if (item) this.tab.set(item.closed_at ? 'closed' : 'open');
    this.room.set(emptyRoom(id));
    this.markSeen();
    void this.loadRoom(id);
  }

  close(): void {
    this.leaveRoom();
    this.view.set(null);
  }

  private leaveRoom(): void {
    const r = this.room.get();
    if (!r) return;
    this.joinRequest += 1;
    this.joinBuffer = null;
    this.room.set(null);
    if (r.joined && !r.minutes) {
      this.api.command('meeting.leave', { meeting_id: r.id }).catch(() => {
        // the server ends the stay when this connection goes anyway
      });
    }
  }

  // --- talking -------------------------------------------------------------------------------

  /**
   * Say something. The key belongs to the words: a retry of the same words (after a failure or
   * a timeout) reuses it, so the server says them only once.
   */
  async say(id: Id, body: string, clientMsgId: string = newClientMsgId()): Promise<void> {
    const entry: Pending = { client_msg_id: clientMsgId, body, error: null };
    this.patchRoom(id, (room) => ({
      ...room,
      pending: [...room.pending.filter((p) => p.client_msg_id !== clientMsgId), entry],
    }));
    try {
      const answer = await this.api.command<{ message_id: Id }>('meeting.say', { meeting_id: id, body, client_msg_id: clientMsgId });
      const messageId = String(answer.message_id);
      this.patchRoom(id, (room) => {
        const pending = room.pending.filter((p) => p.client_msg_id !== clientMsgId);
        if (room.messages.some((m) => m.message_id === messageId)) return { ...room, pending };
        // The push is still on its way (or the socket is down): show it now, once.
        const mine: MeetingSaid = { meeting_id: id, message_id: messageId, from: { id: this.me.id, name: this.me.name }, body, at: new Date().toISOString() };
        return { ...room, pending, messages: [...room.messages, mine] };
      });
    } catch (err) {
      const error = ApiError.from(err);
      this.patchRoom(id, (room) => ({ ...room, pending: room.pending.map((p) => (p.client_msg_id === clientMsgId ? { ...p, error } : p)) }));
      if (error.code === 'conflict') void this.loadRoom(id); // closed meanwhile
      throw error;
    }
  }

  retry(id: Id, p: Pending): Promise<void> {
    return this.say(id, p.body, p.client_msg_id);
  }

  discard(id: Id, p: Pending): void {
    this.patchRoom(id, (room) => ({ ...room, pending: room.pending.filter((x) => x.client_msg_id !== p.client_msg_id) }));
  }

  // --- the chair -------------------------------------------------------------------------------

  async mark(id: Id, messageId: Id, kind: MarkKind, assignee: Id | null, due: string | null): Promise<void> {
    const payload: Record<string, unknown> = { meeting_id: id, message_id: messageId, kind };
    if (kind === 'action' && assignee) payload.assignee = assignee;
    if (kind === 'action' && due) payload.due = due;
    const raw = await this.api.command<MeetingMark>('meeting.mark', payload);
    if (raw?.mark_id !== undefined) {
      const mark = normalizeMark({ ...raw, message_id: raw.message_id ?? messageId });
      this.patchRoom(id, (room) => ({ ...room, marks: addMark(room.marks, mark) }));
    }
  }

  async handover(id: Id, to: Id): Promise<void> {
    const answer = await this.api.command<{ chair?: PersonRef }>('meeting.handover', { meeting_id: id, to });
    const chair = answer?.chair ? person(answer.chair) : null;
    if (chair) this.setChair(id, chair);
  }

  async closeMeeting(id: Id, summary: string, circulate: boolean): Promise<Minutes> {
    const payload: Record<string, unknown> = { meeting_id: id, circulate };
    if (summary) payload.summary = summary;
    const answer = await this.api.command<{ minutes: Minutes }>('meeting.close', payload);
    this.showMinutes(id, answer.minutes);
    return answer.minutes;
  }

  downloadMinutes(id: Id): Promise<void> {
    return downloadFrom(`/api/v1/meetings/${encodeURIComponent(id)}/minutes.md`, `minutes-${id}.md`);
  }

  async create(draft: MeetDraft, clientMsgId: string): Promise<Id> {
    const payload: Record<string, unknown> = { title: draft.title, participants: draft.participants, client_msg_id: clientMsgId };
    if (draft.agenda) payload.agenda = draft.agenda;
    if (draft.starts_at) payload.starts_at = draft.starts_at;
    const answer = await this.api.command<{ meeting_id: Id }>('meeting.create', payload);
    const id = String(answer.meeting_id);
    const item: MeetingItem = {
      meeting_id: id,
      title: draft.title,
      chair: { id: this.me.id, name: this.me.name },
      starts_at: draft.starts_at,
      created_at: new Date().toISOString(),
      closed_at: null,
    };
    this.lists.open.update((list) => ({ ...list, items: mergeItems(list.items, [item]) }));
    this.tab.set('open');
    this.enter(id);
    return id;
  }

  // --- live pushes -------------------------------------------------------------------------

  private invited(data: MeetingInvited): void {
    if (!data || data.meeting_id === undefined) return;
    const item = normalizeItem({ ...data, closed_at: null });
    const known = this.find(item.meeting_id);
    if (!known) this.lists.open.update((list) => ({ ...list, items: mergeItems(list.items, [item]) }));
    if (known || item.chair.id === this.me.id) return;
    this.popup({
      key: `meet-invited-${item.meeting_id}`,
      kind: 'invited',
      meeting_id: item.meeting_id,
      title: item.title,
      from: item.chair,
      body: data.agenda ?? '',
      at: item.starts_at,
    });
  }

  private assigned(data: MeetingActionAssigned): void {
    if (!data || data.meeting_id === undefined) return;
    this.popup({
      key: `meet-action-${data.mark_id}`,
      kind: 'action',
      meeting_id: String(data.meeting_id),
      title: data.meeting_title ?? '',
      from: person(data.assigned_by),
      body: data.body ?? '',
      at: data.due ?? null,
    });
  }

  private popup(entry: MeetPopup): void {
    this.popups.update((list) => [entry, ...list.filter((p) => p.key !== entry.key)].slice(0, POPUP_MAX));
    // An invitation fades after a while; an action item stays until dismissed.
    if (entry.kind === 'invited') setTimeout(() => this.dismissPopup(entry.key), INVITE_POPUP_MS);
    claimAlert(entry.key, () => {
      chime(false);
      const title =
        entry.kind === 'invited'
          ? t('meet.notify_invited', { name: entry.from.name })
          : t('meet.notify_action', { name: entry.from.name });
      notify(title, entry.kind === 'invited' ? entry.title : entry.body.slice(0, 140), entry.key, false, () => {
        location.hash = '#meetings';
        this.enter(entry.meeting_id);
      });
    });
  }

  dismissPopup(key: string): void {
    this.popups.update((list) => list.filter((p) => p.key !== key));
  }

  private said(data: MeetingSaid): void {
    if (!data || data.message_id === undefined || data.meeting_id === undefined) return;
    const said = normalizeSaid(data);
    const id = said.meeting_id;
    const r = this.room.get();
    if (r?.id === id && !r.minutes) {
      if (this.joinBuffer) this.joinBuffer.push(said);
      this.patchRoom(id, (room) => {
        if (room.messages.some((m) => m.message_id === said.message_id)) return room;
        return { ...room, messages: [...room.messages, said] };
      });
    }
    if (said.from.id !== this.me.id && !this.looking(id)) this.setUnread(id, (n) => n + 1);
  }

  private marked(data: MeetingMarked): void {
    if (!data || data.meeting_id === undefined || data.mark_id === undefined) return;
    const mark = normalizeMark({ ...data, at: new Date().toISOString() });
    this.patchRoom(String(data.meeting_id), (room) => ({ ...room, marks: addMark(room.marks, mark) }));
  }

  private setChair(id: Id, chair: PersonRef): void {
    this.patchRoom(id, (room) => (room.meeting ? { ...room, meeting: { ...room.meeting, chair } } : room));
    this.patchItem(id, (m) => ({ ...m, chair }));
  }

  private chairChanged(data: MeetingChair): void {
    if (!data || data.meeting_id === undefined || !data.chair) return;
    const id = String(data.meeting_id);
    const chair = person(data.chair);
    const before = this.room.get()?.id === id ? this.room.get()?.meeting?.chair.id : undefined;
    this.setChair(id, chair);
    if (this.room.get()?.id === id && before !== chair.id) {
      toast(chair.id === this.me.id ? t('meet.chair_you') : t('meet.chair_now', { name: chair.name }), 'info');
    }
  }

  private closedArrived(data: MeetingClosed): void {
    if (!data || data.meeting_id === undefined) return;
    const id = String(data.meeting_id);
    this.closeItem(id, new Date().toISOString());
    this.popups.update((list) => list.filter((p) => !(p.kind === 'invited' && p.meeting_id === id)));
    const r = this.room.get();
    if (r?.id === id && !r.minutes) {
      this.patchRoom(id, (room) => ({ ...room, joined: false }));
      void this.loadMinutes(id);
    }
  }

  private presence(data: MeetingPresence): void {
    if (!data || data.meeting_id === undefined || data.user_id === undefined) return;
    this.patchRoom(String(data.meeting_id), (room) => {
      const userId = String(data.user_id);
      if (room.present.has(userId) === Boolean(data.present)) return room;
      const present = new Set(room.present);
      if (data.present) present.add(userId);
      else present.delete(userId);
      return { ...room, present };
    });
  }
}
