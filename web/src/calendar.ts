// Schedule (日程): a week (Monday to Sunday, local time) of my calendar or someone else's
// (their entries as visibility allows: others' private ones show as busy, without a title),
// creating and cancelling entries. Refetched on `schedule.invited` / `schedule.cancelled`;
// `schedule.reminder` shows a toast (and a system notification when allowed).
// The view is in calendarView.ts.
import { beep, claimAlert, notifyPermission } from './alert';
import type { Connection } from './api';
import { ApiError } from './http';
import { formatDayTime, t } from './i18n';
import { Store } from './store';
import { toast } from './toast';
import type { Id, PersonRef, User } from './types';

export type Visibility = 'private' | 'department' | 'public';
export const VISIBILITIES: Visibility[] = ['department', 'public', 'private'];

export interface Entry {
  entry_id: Id;
  starts_at: string;
  ends_at: string;
  busy: boolean;
  title?: string;
  location?: string;
  owner?: PersonRef;
  visibility?: Visibility;
  attendees?: Id[];
}

export interface Week {
  /** local midnight of the Monday */
  start: Date;
  entries: Entry[];
  loading: boolean;
  error: ApiError | null;
}

export interface EntryDraft {
  title: string;
  starts_at: string;
  ends_at: string | null;
  location: string;
  attendees: Id[];
  visibility: Visibility;
  remind_before_s: number;
}

interface ReminderEvent {
  entry_id: Id;
  title: string;
  starts_at: string;
  location: string;
}

/** Local midnight of the Monday of the week holding `day`. */
export function mondayOf(day: Date): Date {
  const d = new Date(day.getFullYear(), day.getMonth(), day.getDate());
  const back = (d.getDay() + 6) % 7;
  d.setDate(d.getDate() - back);
  return d;
}

export function addDays(day: Date, n: number): Date {
  const d = new Date(day);
  d.setDate(d.getDate() + n);
  return d;
}

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

export class CalendarModel {
  readonly week = new Store<Week>({ start: mondayOf(new Date()), entries: [], loading: false, error: null });
  /** whose calendar: null is mine */
  readonly whose = new Store<PersonRef | null>(null);
  readonly composing = new Store<boolean>(false);

  private request = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly api: Connection,
    readonly me: User,
  ) {
    api.on('schedule.invited', () => this.loadSoon());
    api.on('schedule.cancelled', () => this.loadSoon());
    api.on('schedule.reminder', (data: ReminderEvent) => this.reminder(data));
    api.onConnected(() => void this.load());
  }

  async load(): Promise<void> {
    const request = ++this.request;
    const { start } = this.week.get();
    const whose = this.whose.get();
    this.week.update((w) => ({ ...w, loading: true }));
    const payload: Record<string, unknown> = { from: start.toISOString(), to: addDays(start, 7).toISOString() };
    if (whose) payload.user_id = whose.id;
    try {
      const answer = await this.api.command<{ entries?: Partial<Entry>[] }>('schedule.list', payload);
      if (request !== this.request) return;
      const entries = (answer?.entries ?? [])
        .map((e) => ({
          ...e,
          entry_id: str(e.entry_id),
          starts_at: e.starts_at ?? '',
          ends_at: e.ends_at ?? e.starts_at ?? '',
          busy: !!e.busy,
          owner: e.owner ? { id: str(e.owner.id), name: e.owner.name ?? '' } : undefined,
          attendees: (e.attendees ?? []).map(str),
        }))
        .sort((a, b) => a.starts_at.localeCompare(b.starts_at));
      this.week.update((w) => ({ ...w, entries, loading: false, error: null }));
    } catch (err) {
      if (request !== this.request) return;
      const error = ApiError.from(err);
      this.week.update((w) => ({ ...w, loading: false, error }));
    }
  }

  private loadSoon(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.load(), 200);
  }

  /** Move by whole weeks (0: this week). */
  shift(weeks: number): void {
    const start = weeks === 0 ? mondayOf(new Date()) : addDays(this.week.get().start, 7 * weeks);
    this.week.set({ ...this.week.get(), start, entries: [] });
    void this.load();
  }

  /** Show the week holding this moment (from the inbox). */
  showWeekOf(iso: string | null): void {
    const start = mondayOf(iso ? new Date(iso) : new Date());
    this.whose.set(null);
    this.week.set({ ...this.week.get(), start, entries: [] });
    void this.load();
  }

  view(person: PersonRef | null): void {
    this.whose.set(person && person.id !== this.me.id ? person : null);
    this.composing.set(false);
    void this.load();
  }

  async create(draft: EntryDraft, clientMsgId: string): Promise<Id> {
    const payload: Record<string, unknown> = {
      title: draft.title,
      starts_at: draft.starts_at,
      location: draft.location,
      attendees: draft.attendees,
      visibility: draft.visibility,
      remind_before_s: draft.remind_before_s,
      client_msg_id: clientMsgId,
    };
    if (draft.ends_at) payload.ends_at = draft.ends_at;
    const { entry_id } = await this.api.command<{ entry_id: Id }>('schedule.create', payload);
    this.composing.set(false);
    this.whose.set(null);
    this.week.set({ ...this.week.get(), start: mondayOf(new Date(draft.starts_at)) });
    await this.load();
    return str(entry_id);
  }

  async cancel(entryId: Id): Promise<void> {
    await this.api.command('schedule.cancel', { entry_id: entryId });
    this.week.update((w) => ({ ...w, entries: w.entries.filter((e) => e.entry_id !== entryId) }));
  }

  private reminder(data: ReminderEvent): void {
    if (!data) return;
    const when = data.starts_at ? formatDayTime(data.starts_at) : '';
    const text = t('cal.reminder_toast', { title: data.title ?? '', time: when, location: data.location ?? '' });
    toast(text, 'info', 15_000);
    claimAlert(`sched-${str(data.entry_id)}`, () => {
      beep(784);
      if (notifyPermission.get() === 'granted' && typeof Notification !== 'undefined' && document.hidden) {
        try {
          const n = new Notification(t('cal.reminder_title'), { body: text, tag: `sched-${str(data.entry_id)}` });
          n.onclick = () => {
            window.focus();
            location.hash = '#calendar';
            n.close();
          };
        } catch {
          // the toast stands
        }
      }
    });
  }
}
