// Wire shapes from the Liaison contract (shared/CONTRACT.md). Ids are opaque strings,
// times ISO-8601 UTC strings.

export type Id = string;

export interface User {
  id: Id;
  account: string;
  name: string;
  department_id: Id | null;
  title: string | null;
  phone: string | null;
  email: string | null;
  roles: string[];
  supervisor_id: Id | null;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  user: User;
}

export interface ErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

export type Envelope<T> = { ok: true; data: T } | { ok: false; error: ErrorBody };

export interface ServerEvent<D = Record<string, unknown>> {
  seq: number | null;
  type: string;
  at: string;
  data: D;
}

export interface Department {
  id: Id;
  name: string;
  parent_id: Id | null;
}

export const STATUSES = [
  'in_office',
  'in_meeting',
  'business_trip',
  'on_leave',
  'out',
  'remote',
  'off_duty',
] as const;
export type Status = (typeof STATUSES)[number];

export type Presence = 'online' | 'idle' | 'offline';

export interface PersonRef {
  id: Id;
  name: string;
}

export interface Whereabouts {
  status: Status;
  note: string | null;
  location: string | null;
  until: string | null;
  set_by: PersonRef | null;
  set_at: string | null;
}

export interface MemberUser {
  id: Id;
  name: string;
  title: string | null;
  department_id: Id | null;
  phone: string | null;
}

export interface BoardMember {
  user: MemberUser;
  presence: Presence;
  last_seen: string | null;
  whereabouts: Whereabouts;
  notes_waiting: number;
}

export interface Note {
  id: Id;
  from: PersonRef;
  body: string;
  at: string;
  read_at: string | null;
}

// Event payloads
export interface PresenceChanged {
  user_id: Id;
  presence: Presence;
  last_seen: string | null;
}
export interface WhereaboutsChanged {
  user_id: Id;
  whereabouts: Whereabouts;
  reason: 'set' | 'expired' | string;
}
export interface NotesWaiting {
  user_id: Id;
  notes_waiting: number;
}
export interface NoteReceived {
  note_id: Id;
  from: PersonRef;
  body: string;
  at: string;
}
export interface SyncMark {
  seq: number;
}

// --- pager (网络寻呼) ------------------------------------------------------------------------

export type Priority = 'normal' | 'urgent';

export interface FileInfo {
  file_id: Id;
  name: string;
  size: number;
  content_type?: string | null;
  sha256?: string;
}

/** A page as pager.history lists it; the push (pager.message) carries a subset. */
export interface PagerMessage {
  message_id: Id;
  from: PersonRef;
  to?: PersonRef[];
  /** how many people the page reached; `to` may name only the first few */
  recipients_count?: number;
  departments?: PersonRef[];
  body: string;
  priority: Priority;
  attachments?: FileInfo[];
  reply_to?: Id | null;
  sent_at: string;
  via?: 'web' | 'sms' | string;
  /** for received pages */
  my_state?: 'unread' | 'read';
  /** for sent pages */
  receipts_summary?: { total: number; delivered: number; read: number };
}

export interface SmsState {
  state: string;
  at: string | null;
}

export interface ReceiptRow {
  user_id: Id;
  name?: string;
  delivered_at: string | null;
  read_at: string | null;
  sms: SmsState | null;
  emailed_at?: string | null;
  /** from the pager.send answer */
  online?: boolean;
}

export interface PagerReceiptEvent {
  message_id: Id;
  user_id: Id;
  state: 'delivered' | 'read' | 'sms_sent' | 'sms_failed' | 'emailed' | string;
  at: string;
}

export interface PagerSendAnswer {
  message_id: Id;
  sent_at: string;
  recipients: { user_id: Id; online: boolean }[];
}

export type SmsFallback = 'offline' | 'urgent' | 'off';

export interface PagerPrefs {
  sms_fallback: SmsFallback;
  quiet_hours: { start: string; end: string } | null;
}

export interface DirectoryUser {
  id: Id;
  account?: string;
  name: string;
  department_id: Id | null;
  title: string | null;
}

// --- circulation (传阅) ------------------------------------------------------------------------

export type CircState = 'unopened' | 'opened' | 'confirmed';

export interface CircCounts {
  unopened: number;
  opened: number;
  confirmed: number;
}

/** A circulation as circulation.list lists it. */
export interface CircItem {
  circulation_id: Id;
  title: string;
  from: PersonRef;
  deadline: string | null;
  sent_at: string;
  recalled: boolean;
  /** inbox: where I stand */
  my_state?: CircState | null;
  /** sent: where the recipients stand */
  counts?: CircCounts;
}

/** circulation.open */
export interface CircDetail {
  circulation_id: Id;
  title: string;
  /** sanitized HTML */
  body: string;
  from: PersonRef;
  deadline: string | null;
  sent_at: string;
  attachments: FileInfo[];
  recipients_count: number;
  recalled: boolean;
  /** null for the sender */
  my_state: CircState | null;
  my_comment: string | null;
  my_opened_at?: string | null;
  my_confirmed_at?: string | null;
  /** when I confirmed: the server's my_confirmed_at, or what circulation.confirm answered */
  confirmed_at?: string | null;
}

export interface CircRecipient {
  user_id: Id;
  name: string;
  state: CircState;
  opened_at: string | null;
  confirmed_at: string | null;
  comment: string | null;
}

/** circulation.status (the command) */
export interface CircStatus {
  circulation_id: Id;
  counts: CircCounts;
  recipients: CircRecipient[];
  remind_allowed_at: string | null;
}

export interface CircCreateAnswer {
  circulation_id: Id;
  recipients_count: number;
}

export interface CircRemindAnswer {
  reminded: number;
  sms: number;
  remind_allowed_at: string | null;
}

// Event payloads
export interface CircReceived {
  circulation_id: Id;
  title: string;
  from: PersonRef;
  deadline: string | null;
  sent_at: string;
}
export interface CircStatusEvent {
  circulation_id: Id;
  user_id: Id;
  state: CircState;
  at: string;
  comment?: string | null;
}
export interface CircReminder {
  circulation_id: Id;
  title: string;
  from: PersonRef;
  deadline: string | null;
}
export interface CircRecalled {
  circulation_id: Id;
}
export interface CircOverdue {
  circulation_id: Id;
  unconfirmed: PersonRef[];
}

// --- meetings (会议) ---------------------------------------------------------------------------

export type MarkKind = 'decision' | 'action';

/** A meeting as meeting.list lists it. */
export interface MeetingItem {
  meeting_id: Id;
  title: string;
  chair: PersonRef;
  starts_at: string | null;
  created_at: string;
  closed_at: string | null;
}

/** meeting.join → meeting */
export interface MeetingDetail extends MeetingItem {
  agenda: string;
  participants: PersonRef[];
  circulation_id: Id | null;
}

/** One turn of the transcript (meeting.join → messages, the meeting.message push). */
export interface MeetingSaid {
  meeting_id: Id;
  message_id: Id;
  from: PersonRef;
  body: string;
  at: string;
}

/** meeting.join → marks */
export interface MeetingMark {
  mark_id: Id;
  message_id: Id;
  kind: MarkKind;
  assignee: PersonRef | null;
  due: string | null;
  at: string;
}

export interface MeetingJoinAnswer {
  meeting: MeetingDetail;
  messages: MeetingSaid[];
  marks: MeetingMark[];
  present: Id[];
}

/** The minutes object (meeting.close → minutes, meeting.minutes → minutes). */
export interface Minutes {
  meeting_id: Id;
  title: string;
  agenda: string;
  chair: PersonRef;
  started_at: string;
  ended_at: string;
  attendees: (PersonRef & { joined_at: string; left_at: string | null })[];
  absentees: PersonRef[];
  decisions: { mark_id: Id; message_id: Id; body: string; by: string }[];
  actions: { mark_id: Id; message_id: Id; body: string; assignee: PersonRef | null; due: string | null }[];
  transcript: MeetingSaid[];
  summary: string | null;
  circulation_id: Id | null;
}

// Event payloads
export interface MeetingInvited {
  meeting_id: Id;
  title: string;
  agenda: string;
  chair: PersonRef;
  starts_at: string | null;
}
export interface MeetingPresence {
  meeting_id: Id;
  user_id: Id;
  present: boolean;
}
export interface MeetingMarked {
  meeting_id: Id;
  message_id: Id;
  mark_id: Id;
  kind: MarkKind;
  body: string;
  assignee: PersonRef | null;
  due: string | null;
}
export interface MeetingActionAssigned {
  meeting_id: Id;
  meeting_title: string;
  message_id: Id;
  mark_id: Id;
  body: string;
  due: string | null;
  assigned_by: PersonRef;
}
export interface MeetingChair {
  meeting_id: Id;
  chair: PersonRef;
}
export interface MeetingClosed {
  meeting_id: Id;
}
