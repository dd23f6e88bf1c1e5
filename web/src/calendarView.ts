// The week calendar (日程): Monday to Sunday in local time, mine or someone else's (busy
// blocks as 忙), a new-entry form with attendees, visibility and reminder, cancelling my own.
import { useEffect, useState } from 'preact/hooks';
import { addDays, VISIBILITIES, type CalendarModel, type Entry, type Visibility } from './calendar';
import { ErrorNote } from './components';
import { newClientMsgId, type Recipient } from './compose';
import type { AppContext } from './context';
import { html } from './html';
import { ApiError } from './http';
import { formatFull, lang, localInputValue, t, type MessageKey } from './i18n';
import { useStore } from './store';
import { PersonPicker } from './picker';
import { toast } from './toast';

const value = (e: Event) => (e.currentTarget as HTMLInputElement).value;
const pad = (n: number) => String(n).padStart(2, '0');
const hm = (d: Date) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;

const VIS_LABEL: Record<Visibility, MessageKey> = {
  private: 'cal.vis.private',
  department: 'cal.vis.department',
  public: 'cal.vis.public',
};
const REMINDERS = [0, 300, 900, 1800, 3600, 86400];

function dayLabel(day: Date): string {
  const zh = lang.get() === 'zh';
  const names = zh ? ['周一', '周二', '周三', '周四', '周五', '周六', '周日'] : ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const name = names[(day.getDay() + 6) % 7];
  return zh ? `${name} ${day.getMonth() + 1}/${day.getDate()}` : `${name} ${day.getDate()}/${day.getMonth() + 1}`;
}

function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** The entries that touch this local day. */
function entriesOn(entries: Entry[], day: Date): Entry[] {
  const start = day.getTime();
  const end = addDays(day, 1).getTime();
  return entries.filter((e) => {
    const s = new Date(e.starts_at).getTime();
    const f = Math.max(new Date(e.ends_at).getTime(), s + 1);
    return s < end && f > start;
  });
}

function Block({ ctx, entry, mine }: { ctx: AppContext; entry: Entry; mine: boolean }) {
  const model = ctx.calendar;
  const s = new Date(entry.starts_at);
  const f = new Date(entry.ends_at);
  const own = mine && entry.owner?.id === ctx.me.id;
  const cancel = async () => {
    if (!window.confirm(t('cal.cancel_confirm', { title: entry.title ?? '' }))) return;
    try {
      await model.cancel(entry.entry_id);
      toast(t('cal.cancelled'), 'success');
    } catch (err) {
      toast(ApiError.from(err).message, 'error');
    }
  };
  if (entry.busy) {
    return html`<div class="cal-block busy" data-testid=${`cal-entry-${entry.entry_id}`} data-busy="true" title=${`${formatFull(entry.starts_at)} – ${formatFull(entry.ends_at)}`}>
      <span class="cal-time">${hm(s)}–${hm(f)}</span>
      <span class="cal-title">${t('cal.busy')}</span>
    </div>`;
  }
  return html`<div
    class=${`cal-block vis-${entry.visibility ?? 'department'}${own ? ' own' : ''}`}
    data-testid=${`cal-entry-${entry.entry_id}`}
    data-busy="false"
    title=${`${formatFull(entry.starts_at)} – ${formatFull(entry.ends_at)}`}
  >
    <span class="cal-time">${hm(s)}–${hm(f)}</span>
    <span class="cal-title">${entry.title}</span>
    ${entry.location ? html`<span class="cal-where">${t('cal.location')} · ${entry.location}</span>` : null}
    ${entry.owner && entry.owner.id !== ctx.me.id ? html`<span class="cal-where">${t('cal.by', { name: entry.owner.name })}</span>` : null}
    ${entry.visibility === 'private' ? html`<span class="cal-where">${t('cal.vis.private')}</span>` : null}
    ${own
      ? html`<button type="button" class="cal-cancel" title=${t('cal.cancel')} data-testid=${`cal-cancel-${entry.entry_id}`} onClick=${() => void cancel()}>
          ${t('cal.cancel')}
        </button>`
      : null}
  </div>`;
}

function EntryForm({ ctx, start }: { ctx: AppContext; start: Date }) {
  const model = ctx.calendar;
  const initial = () => {
    const now = new Date();
    const d = now >= start && now < addDays(start, 7) ? now : new Date(start.getTime() + 9 * 3_600_000);
    d.setMinutes(0, 0, 0);
    d.setHours(d.getHours() + (d.getTime() <= now.getTime() ? 1 : 0));
    return d;
  };
  const [title, setTitle] = useState('');
  const [startsAt, setStartsAt] = useState(() => localInputValue(initial()));
  const [endsAt, setEndsAt] = useState(() => localInputValue(new Date(initial().getTime() + 3_600_000)));
  const [location, setLocation] = useState('');
  const [attendees, setAttendees] = useState<Recipient[]>([]);
  const [visibility, setVisibility] = useState<Visibility>('department');
  const [remind, setRemind] = useState(900);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [clientMsgId] = useState(newClientMsgId);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!title.trim() || !startsAt) {
      setError(new ApiError({ code: 'bad_request', message: t('cal.form_missing') }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await model.create(
        {
          title: title.trim(),
          starts_at: new Date(startsAt).toISOString(),
          ends_at: endsAt ? new Date(endsAt).toISOString() : null,
          location: location.trim(),
          attendees: attendees.map((r) => r.id),
          visibility,
          remind_before_s: remind,
        },
        clientMsgId,
      );
      toast(t('cal.created'), 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card cal-form" data-testid="cal-form" onSubmit=${submit}>
    <div class="card-header"><h2>${t('cal.new')}</h2></div>
    <label class="field">
      <span class="field-label">${t('cal.title_label')}</span>
      <input class="input" type="text" maxLength="200" value=${title} data-testid="cal-title" onInput=${(e: Event) => setTitle(value(e))} />
    </label>
    <div class="task-form-row">
      <label class="field">
        <span class="field-label">${t('cal.starts')}</span>
        <input class="input" type="datetime-local" value=${startsAt} data-testid="cal-starts" onInput=${(e: Event) => setStartsAt(value(e))} />
      </label>
      <label class="field">
        <span class="field-label">${t('cal.ends')}</span>
        <input class="input" type="datetime-local" value=${endsAt} data-testid="cal-ends" onInput=${(e: Event) => setEndsAt(value(e))} />
      </label>
    </div>
    <label class="field">
      <span class="field-label">${t('cal.location')}</span>
      <input class="input" type="text" maxLength="200" value=${location} data-testid="cal-location" onInput=${(e: Event) => setLocation(value(e))} />
    </label>
    <${PersonPicker} people=${ctx.pager} prefix="cal-attendee" label=${t('cal.attendees')} chosen=${attendees} multiple=${true} onChange=${setAttendees} />
    <div class="task-form-row">
      <label class="field">
        <span class="field-label">${t('cal.visibility')}</span>
        <select class="input" value=${visibility} data-testid="cal-visibility" onChange=${(e: Event) => setVisibility(value(e) as Visibility)}>
          ${VISIBILITIES.map((v) => html`<option value=${v}>${t(VIS_LABEL[v])}</option>`)}
        </select>
      </label>
      <label class="field">
        <span class="field-label">${t('cal.remind')}</span>
        <select class="input" value=${String(remind)} data-testid="cal-remind" onChange=${(e: Event) => setRemind(Number(value(e)))}>
          ${REMINDERS.map((s) => html`<option value=${String(s)}>${s === 0 ? t('cal.remind_at_start') : s < 3600 ? t('cal.remind_min', { n: s / 60 }) : s < 86400 ? t('cal.remind_hour', { n: s / 3600 }) : t('cal.remind_day')}</option>`)}
        </select>
      </label>
    </div>
    <${ErrorNote} error=${error} testid="cal-form-error" />
    <div class="task-buttons">
      <button type="submit" class="btn btn-primary" disabled=${busy} data-testid="cal-create">${t('cal.create')}</button>
      <button type="button" class="btn btn-ghost" onClick=${() => model.composing.set(false)}>${t('task.cancel')}</button>
    </div>
  </form>`;
}

export function CalendarPanel({ ctx }: { ctx: AppContext }) {
  const model: CalendarModel = ctx.calendar;
  const week = useStore(model.week);
  const whose = useStore(model.whose);
  const composing = useStore(model.composing);
  const [picking, setPicking] = useState<Recipient[]>([]);
  // My own entries made elsewhere (another tab) push nothing: read the week whenever it is shown.
  useEffect(() => void model.load(), [model]);
  const days = Array.from({ length: 7 }, (_, i) => addDays(week.start, i));
  const today = new Date();
  const end = addDays(week.start, 6);
  const range = `${week.start.getFullYear()}-${pad(week.start.getMonth() + 1)}-${pad(week.start.getDate())} – ${pad(end.getMonth() + 1)}-${pad(end.getDate())}`;
  return html`<div class="cal-layout" data-testid="cal-panel" data-whose=${whose?.id ?? ctx.me.id}>
    <section class="card">
      <div class="card-header">
        <h2>${whose ? t('cal.title_of', { name: whose.name }) : t('cal.title')}</h2>
        <div class="cal-nav">
          <button type="button" class="btn btn-small" data-testid="cal-prev" onClick=${() => model.shift(-1)}>‹ ${t('cal.prev')}</button>
          <button type="button" class="btn btn-small" data-testid="cal-today" onClick=${() => model.shift(0)}>${t('cal.this_week')}</button>
          <button type="button" class="btn btn-small" data-testid="cal-next" onClick=${() => model.shift(1)}>${t('cal.next')} ›</button>
          <span class="muted small" data-testid="cal-range">${range}</span>
        </div>
        ${whose
          ? null
          : html`<button type="button" class=${`btn btn-small${composing ? '' : ' btn-primary'}`} data-testid="cal-new" onClick=${() => model.composing.set(!composing)}>
              ＋ ${t('cal.new')}
            </button>`}
      </div>
      <div class="cal-whose">
        <${PersonPicker}
          people=${ctx.pager}
          prefix="cal-who"
          label=${t('cal.view_of')}
          chosen=${picking}
          onChange=${(next: Recipient[]) => {
            setPicking(next);
            model.view(next[0] ? { id: next[0].id, name: next[0].name } : null);
          }}
        />
        ${whose
          ? html`<button type="button" class="btn btn-small btn-ghost" data-testid="cal-mine" onClick=${() => {
              setPicking([]);
              model.view(null);
            }}>${t('cal.back_to_mine')}</button>`
          : null}
      </div>
      <${ErrorNote} error=${week.error} testid="cal-error" />
      <div class="cal-grid" data-testid="cal-week" data-loading=${week.loading ? 'true' : 'false'}>
        ${days.map((day, i) => {
          const list = entriesOn(week.entries, day);
          return html`<div key=${i} class=${`cal-day${sameDay(day, today) ? ' today' : ''}${i >= 5 ? ' weekend' : ''}`} data-testid=${`cal-day-${i}`}>
            <div class="cal-day-head">${dayLabel(day)}</div>
            <div class="cal-day-body">
              ${list.map((e) => html`<${Block} key=${e.entry_id} ctx=${ctx} entry=${e} mine=${!whose} />`)}
              ${list.length === 0 ? html`<div class="cal-free muted small">—</div>` : null}
            </div>
          </div>`;
        })}
      </div>
    </section>
    ${composing && !whose ? html`<${EntryForm} ctx=${ctx} start=${week.start} />` : null}
  </div>`;
}
