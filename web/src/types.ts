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
