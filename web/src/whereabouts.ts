// "Set my whereabouts": the form for oneself, or, for a leader, for someone on the board.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Connection } from './api';
import type { BoardModel } from './board';
import { ErrorNote, StatusBadge } from './components';
import { ApiError } from './http';
import { html } from './html';
import { formatUntil, t } from './i18n';
import { Store, useStore } from './store';
import { STATUSES, type MemberUser, type Status, type User } from './types';

const WORKDAY_END = { hours: 17, minutes: 30 };
const WORKDAY_START = { hours: 9, minutes: 0 };

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** A Date as the value of an <input type="datetime-local"> (local time, minutes). */
export function toLocalInput(date: Date): string {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

function atLocal(daysFromToday: number, time: { hours: number; minutes: number }): Date {
  const now = new Date();
  return new Date(now.getFullYear(), now.getMonth(), now.getDate() + daysFromToday, time.hours, time.minutes);
}

function inOneHour(): Date {
  const date = new Date(Date.now() + 3_600_000);
  // Round up to the next five minutes: nobody says "back at 14:37".
  date.setSeconds(0, 0);
  date.setMinutes(Math.ceil(date.getMinutes() / 5) * 5);
  return date;
}

interface FormState {
  status: Status;
  note: string;
  location: string;
  until: string;
}

/** A fresh form: the subject's current status, everything else empty (what you see is sent). */
function freshForm(status: Status | undefined): FormState {
  return { status: status ?? 'in_office', note: '', location: '', until: '' };
}

/** Whose whereabouts the form sets: null for oneself, else a board member (leaders only). */
export const formTarget = new Store<MemberUser | null>(null);

export function WhereaboutsForm(props: { api: Connection; board: BoardModel; me: User }) {
  const { api, board, me } = props;
  const target = useStore(formTarget);
  const members = useStore(board.members);
  const subjectId = target?.id ?? me.id;
  const subjectName = target?.name ?? me.name;
  const current = members.find((m) => m.user.id === subjectId)?.whereabouts;

  const [form, setForm] = useState<FormState>(() => freshForm(current?.status));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState(false);
  // Until the user touches the form, its status follows the subject's live status.
  const dirty = useRef(false);

  // A layout effect, run before the browser regains control: a plain effect runs after paint,
  // and would wipe what was typed into the form in between.
  useLayoutEffect(() => {
    dirty.current = false;
    setForm(freshForm(current?.status));
    setError(null);
    setSaved(false);
  }, [subjectId]);

  useEffect(() => {
    if (!dirty.current && current) setForm((old) => ({ ...old, status: current.status }));
  }, [current?.status]);

  const change = (patch: Partial<FormState>) => {
    dirty.current = true;
    setSaved(false);
    setForm((old) => ({ ...old, ...patch }));
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setSaved(false);
    const payload: Record<string, unknown> = { status: form.status };
    if (form.note.trim()) payload.note = form.note.trim();
    if (form.location.trim()) payload.location = form.location.trim();
    if (form.until) {
      const until = new Date(form.until);
      if (Number.isNaN(until.getTime()) || until.getTime() <= Date.now()) {
        setError(new ApiError({ code: 'bad_request', message: t('wa.until_past') }));
        return;
      }
      payload.until = until.toISOString();
    }
    if (target) payload.for_user = target.id;
    setBusy(true);
    try {
      const data = await api.command<Record<string, unknown>>('whereabouts.set', payload);
      board.applyOwnChange(subjectId, data?.whereabouts ?? data);
      dirty.current = false;
      setForm(freshForm(form.status));
      setSaved(true);
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };

  const quick = (date: Date | null) => change({ until: date ? toLocalInput(date) : '' });
  const endOfDay = atLocal(0, WORKDAY_END);

  return html`<section class="card wa-form" aria-labelledby="wa-title">
    <div class="card-header">
      <h2 id="wa-title">${target ? t('wa.title_for', { name: subjectName }) : t('wa.title')}</h2>
      ${target
        ? html`<button type="button" class="link" data-testid="wa-back-to-me" onClick=${() => formTarget.set(null)}>
            ${t('wa.back_to_me')}
          </button>`
        : null}
    </div>
    ${current
      ? html`<div class="wa-current">
          <span class="muted">${t('wa.current')}</span>
          <${StatusBadge} status=${current.status} />
          ${current.note ? html`<span>${current.note}</span>` : null}
          ${current.location ? html`<span class="muted">${t('board.location', { place: current.location })}</span>` : null}
          ${current.until ? html`<span class="muted">${formatUntil(current.until)}</span>` : null}
        </div>`
      : null}
    <form onSubmit=${submit} class="form">
      <label class="field">
        <span class="field-label">${t('wa.status')}</span>
        <select
          data-testid="wa-status"
          value=${form.status}
          onChange=${(e: Event) => change({ status: (e.currentTarget as HTMLSelectElement).value as Status })}
        >
          ${STATUSES.map((s) => html`<option key=${s} value=${s}>${t(`status.${s}`)}</option>`)}
        </select>
      </label>
      <label class="field">
        <span class="field-label">${t('wa.note')}</span>
        <input
          type="text"
          data-testid="wa-note"
          maxlength="200"
          placeholder=${t('wa.note_placeholder')}
          value=${form.note}
          onInput=${(e: Event) => change({ note: (e.currentTarget as HTMLInputElement).value })}
        />
      </label>
      <label class="field">
        <span class="field-label">${t('wa.location')}</span>
        <input
          type="text"
          data-testid="wa-location"
          maxlength="200"
          placeholder=${t('wa.location_placeholder')}
          value=${form.location}
          onInput=${(e: Event) => change({ location: (e.currentTarget as HTMLInputElement).value })}
        />
      </label>
      <label class="field">
        <span class="field-label">${t('wa.until')}</span>
        <input
          type="datetime-local"
          data-testid="wa-until"
          value=${form.until}
          onInput=${(e: Event) => change({ until: (e.currentTarget as HTMLInputElement).value })}
          onChange=${(e: Event) => change({ until: (e.currentTarget as HTMLInputElement).value })}
        />
      </label>
      <div class="quick-times">
        <button type="button" class="chip" data-testid="wa-until-1h" onClick=${() => quick(inOneHour())}>
          ${t('wa.in_1h')}
        </button>
        <button
          type="button"
          class="chip"
          data-testid="wa-until-eod"
          disabled=${endOfDay.getTime() <= Date.now()}
          onClick=${() => quick(endOfDay)}
        >
          ${t('wa.end_of_day')}
        </button>
        <button
          type="button"
          class="chip"
          data-testid="wa-until-tomorrow"
          onClick=${() => quick(atLocal(1, WORKDAY_START))}
        >
          ${t('wa.tomorrow')}
        </button>
        <button type="button" class="chip chip-ghost" data-testid="wa-until-clear" onClick=${() => quick(null)}>
          ${t('wa.clear')}
        </button>
      </div>
      <${ErrorNote} error=${error} testid="wa-error" />
      ${saved ? html`<div class="ok-note" role="status" data-testid="wa-saved">${t('wa.saved')}</div>` : null}
      <button type="submit" class="btn btn-primary" data-testid="wa-submit" disabled=${busy}>
        ${busy ? t('wa.saving') : target ? t('wa.submit_for', { name: subjectName }) : t('wa.submit')}
      </button>
    </form>
  </section>`;
}
