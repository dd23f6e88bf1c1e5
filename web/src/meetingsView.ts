// The meetings panel (会议): my meetings (open / closed) and the new-meeting form; the room
// (transcript as chat bubbles with their decision / action tags, who is present, the input box,
// the chair's marks, handover and close); the minutes once closed (Markdown download, link to
// the circulated copy); and the pop-ups for invitations and action items assigned to me.
import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ErrorNote, PopupCard } from './components';
import { RecipientPicker, composing, newClientMsgId, type Recipient } from './compose';
import type { AppContext } from './context';
import { ApiError } from './http';
import { html } from './html';
import { formatAgo, formatDayTime, formatFull, localInputValue, t } from './i18n';
import { STATES, type MeetingsModel, type MeetList, type MeetState, type Pending, type Room } from './meetings';
import { useStore } from './store';
import { toast } from './toast';
import type { Id, MarkKind, MeetingItem, MeetingMark, MeetingSaid, Minutes, PersonRef } from './types';

const badRequest = (message: string) => new ApiError({ code: 'bad_request', message });
const value = (e: Event) => (e.currentTarget as HTMLInputElement).value;

function Time({ iso, ago }: { iso: string | null | undefined; ago?: boolean }) {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime=${iso} title=${formatFull(iso)}>${ago ? formatAgo(iso) : formatDayTime(iso)}</time>`;
}

function MarkTag({ kind, mark }: { kind: MarkKind; mark?: MeetingMark }) {
  const who = kind === 'action' ? (mark?.assignee?.name ?? t('meet.unassigned')) : '';
  return html`<span class=${`meet-tag meet-tag-${kind}`}>
    ${kind === 'decision' ? `✔ ${t('meet.decision')}` : `☐ ${t('meet.action')}`}
    ${kind === 'action' ? html`<span class="meet-tag-who">· ${who}${mark?.due ? ` · ${t('meet.due', { time: formatDayTime(mark.due) })}` : ''}</span>` : null}
  </span>`;
}

/** A dialog over the page; Escape or a click beside it cancels. */
function Modal(props: { testid: string; title: string; onCancel: () => void; onSubmit: () => void; children: ComponentChildren }) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && props.onCancel();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [props.onCancel]);
  return html`<div class="modal-backdrop" onClick=${(e: Event) => e.target === e.currentTarget && props.onCancel()}>
    <div class="modal" role="dialog" aria-modal="true" aria-label=${props.title} data-testid=${props.testid}>
      <form
        class="form"
        onSubmit=${(e: Event) => {
          e.preventDefault();
          props.onSubmit();
        }}
      >
        <h2>${props.title}</h2>
        ${props.children}
      </form>
    </div>
  </div>`;
}

// --- lists ------------------------------------------------------------------------------------

function ItemRow({ meet, item, active, unread }: { meet: MeetingsModel; item: MeetingItem; active: boolean; unread: number }) {
  const state: MeetState = item.closed_at ? 'closed' : 'open';
  const enter = () => meet.enter(item.meeting_id);
  const chairIsMe = item.chair.id === meet.myId;
  return html`<li
    class=${['pager-item', 'meet-item', unread > 0 && 'unread', active && 'active', state].filter(Boolean).join(' ')}
    data-testid=${`meet-item-${item.meeting_id}`}
    data-state=${state}
    data-unread=${unread}
    tabindex="0"
    onClick=${enter}
    onKeyDown=${(e: KeyboardEvent) => e.key === 'Enter' && enter()}
  >
    <div class="pager-item-head">
      <span class="pager-item-who meet-item-title">${item.title}</span>
      ${unread > 0 ? html`<span class="count-badge" aria-label=${t('nav.unread', { n: unread })}>${unread}</span>` : null}
      <span class="pager-time">
        <${Time} iso=${item.closed_at ?? item.starts_at ?? item.created_at} ago=${!item.closed_at && !item.starts_at} />
      </span>
    </div>
    <div class="pager-item-foot">
      <span class="muted">${t('meet.chaired_by', { name: chairIsMe ? t('meet.me') : item.chair.name })}</span>
      ${item.closed_at
        ? html`<span class="meet-badge meet-badge-closed">${t('meet.closed')}</span>`
        : item.starts_at
          ? html`<span class="muted">${t('meet.starts', { time: formatDayTime(item.starts_at) })}</span>`
          : null}
    </div>
  </li>`;
}

function ListBody({ meet, state, list }: { meet: MeetingsModel; state: MeetState; list: MeetList }) {
  const room = useStore(meet.room);
  const unreadBy = useStore(meet.unreadBy);
  return html`<div>
    <ul class="pager-list" data-testid=${`meet-list-${state}`}>
      ${list.items.map(
        (m) => html`<${ItemRow}
          key=${m.meeting_id}
          meet=${meet}
          item=${m}
          active=${room?.id === m.meeting_id}
          unread=${unreadBy[m.meeting_id] ?? 0}
        />`,
      )}
    </ul>
    ${list.items.length === 0 && !list.error
      ? html`<div class="empty">${list.loading ? t('board.loading') : state === 'open' ? t('meet.open_empty') : t('meet.closed_empty')}</div>`
      : null}
    ${list.hasMore && list.items.length > 0
      ? html`<button
          type="button"
          class="btn btn-small btn-ghost btn-block"
          data-testid="meet-load-more"
          disabled=${list.loading}
          onClick=${() => void meet.loadList(state, true)}
        >
          ${list.loading ? t('board.loading') : t('pager.load_more')}
        </button>`
      : null}
  </div>`;
}

function Lists({ meet }: { meet: MeetingsModel }) {
  const tab = useStore(meet.tab);
  const open = useStore(meet.lists.open);
  const closed = useStore(meet.lists.closed);
  const unreadBy = useStore(meet.unreadBy);
  const view = useStore(meet.view);
  const lists = { open, closed };
  const list = lists[tab];
  const unreadIn = (state: MeetState) => lists[state].items.reduce((n, m) => n + (unreadBy[m.meeting_id] ?? 0), 0);
  return html`<section class="card pager-lists" aria-labelledby="meet-list-title">
    <div class="card-header">
      <h2 id="meet-list-title">${t('meet.title')}</h2>
      <button
        type="button"
        class=${`btn btn-small${view?.kind === 'new' ? '' : ' btn-primary'}`}
        data-testid="meet-new"
        onClick=${() => meet.compose()}
      >
        ＋ ${t('meet.new')}
      </button>
    </div>
    <div class="pager-tabs" role="tablist">
      ${STATES.map((state) => {
        const n = unreadIn(state);
        return html`<button
          key=${state}
          type="button"
          role="tab"
          aria-selected=${tab === state}
          class=${`pager-tab${tab === state ? ' active' : ''}`}
          data-testid=${`meet-tab-${state}`}
          onClick=${() => meet.tab.set(state)}
        >
          ${state === 'open' ? t('meet.tab_open') : t('meet.tab_closed')}
          ${n > 0 ? html` <span class="count-badge">${n}</span>` : null}
        </button>`;
      })}
    </div>
    <${ErrorNote} error=${list.error} testid="meet-list-error" />
    <${ListBody} meet=${meet} state=${tab} list=${list} />
  </section>`;
}

// --- the new meeting form ---------------------------------------------------------------------

function NewMeeting({ ctx }: { ctx: AppContext }) {
  const { meetings: meet, pager: people } = ctx;
  const [title, setTitle] = useState('');
  const [agenda, setAgenda] = useState('');
  const [participants, setParticipants] = useState<Recipient[]>([]);
  const [startsAt, setStartsAt] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  // One key per meeting written: a retry after a failure or timeout reuses it.
  const clientMsgId = useRef(newClientMsgId());

  const create = async () => {
    const text = title.trim();
    if (!text) return setError(badRequest(t('meet.need_title')));
    const ids = participants.filter((r) => r.kind === 'user').map((r) => r.id);
    if (ids.length === 0) return setError(badRequest(t('meet.need_participants')));
    let starts: string | null = null;
    if (startsAt) {
      const date = new Date(startsAt);
      if (Number.isNaN(date.getTime())) return setError(badRequest(t('meet.bad_time')));
      starts = date.toISOString();
    }
    setBusy(true);
    setError(null);
    try {
      await meet.create({ title: text, agenda: agenda.trim(), participants: ids, starts_at: starts }, clientMsgId.current);
      clientMsgId.current = newClientMsgId();
      toast(t('meet.created', { n: ids.length }), 'success');
    } catch (err) {
      setError(ApiError.from(err));
      setBusy(false);
    }
  };

  return html`<section class="card meet-compose" data-testid="meet-compose" aria-labelledby="meet-compose-title">
    <div class="card-header">
      <h2 id="meet-compose-title">${t('meet.form_title')}</h2>
      <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => meet.close()}>×</button>
    </div>
    <form
      class="form"
      onSubmit=${(e: Event) => {
        e.preventDefault();
        void create();
      }}
    >
      <label class="field">
        <span class="field-label">${t('meet.field_title')}</span>
        <input
          type="text"
          maxlength="200"
          data-testid="meet-title"
          placeholder=${t('meet.title_placeholder')}
          value=${title}
          onInput=${(e: Event) => setTitle(value(e))}
        />
      </label>
      <label class="field">
        <span class="field-label">${t('meet.field_agenda')}</span>
        <textarea
          rows="3"
          maxlength="5000"
          data-testid="meet-agenda"
          placeholder=${t('meet.agenda_placeholder')}
          value=${agenda}
          onInput=${(e: Event) => setAgenda(value(e))}
        ></textarea>
      </label>
      <${RecipientPicker}
        source=${people}
        prefix="meet"
        peopleOnly=${true}
        label=${t('meet.field_participants')}
        chosen=${participants}
        onChange=${setParticipants}
      />
      <label class="field meet-starts-field">
        <span class="field-label">${t('meet.field_starts')}</span>
        <input type="datetime-local" data-testid="meet-starts-at" value=${startsAt} onInput=${(e: Event) => setStartsAt(value(e))} />
      </label>
      <div class="pager-compose-tools">
        <span class="pager-hint muted">${t('meet.chair_hint')}</span>
        <button type="button" class="btn" onClick=${() => meet.close()}>${t('circ.cancel')}</button>
        <button type="submit" class="btn btn-primary" data-testid="meet-create" disabled=${busy}>
          ${busy ? t('meet.creating') : t('meet.create')}
        </button>
      </div>
      <${ErrorNote} error=${error} testid="meet-error" />
    </form>
  </section>`;
}

// --- the room ---------------------------------------------------------------------------------

function People({ room, me }: { room: Room; me: Id }) {
  const meeting = room.meeting;
  if (!meeting) return null;
  const here = meeting.participants.filter((p) => room.present.has(p.id)).length;
  return html`<aside class="meet-people" data-testid="meet-people" aria-labelledby="meet-people-title">
    <h3 id="meet-people-title">
      ${t('meet.participants')} <span class="muted small">${t('meet.present_count', { n: here, total: meeting.participants.length })}</span>
    </h3>
    <ul>
      ${meeting.participants.map((p) => {
        const present = room.present.has(p.id);
        return html`<li
          key=${p.id}
          class=${`meet-person${present ? ' present' : ''}`}
          data-testid=${`meet-present-${p.id}`}
          data-present=${present ? 'true' : 'false'}
        >
          <span
            class=${`presence-dot ${present ? 'presence-online' : 'presence-offline'}`}
            role="img"
            aria-label=${present ? t('meet.here') : t('meet.away')}
            title=${present ? t('meet.here') : t('meet.away')}
          ></span>
          <span class="meet-person-name">${p.name}${p.id === me ? html` <span class="muted">(${t('meet.me')})</span>` : null}</span>
          ${p.id === meeting.chair.id ? html`<span class="meet-badge meet-badge-chair">${t('meet.chair')}</span>` : null}
        </li>`;
      })}
    </ul>
  </aside>`;
}

function Bubble(props: {
  meet: MeetingsModel;
  room: Room;
  said: MeetingSaid;
  chair: boolean;
  onAction: (said: MeetingSaid) => void;
}) {
  const { meet, room, said, chair } = props;
  const [busy, setBusy] = useState(false);
  const marks = room.marks[said.message_id] ?? [];
  const has = (kind: MarkKind) => marks.some((k) => k.kind === kind);
  const mine = said.from.id === meet.myId;
  const decide = async () => {
    setBusy(true);
    try {
      await meet.mark(room.id, said.message_id, 'decision', null, null);
    } catch (err) {
      toast(`${t('meet.mark_failed')}: ${ApiError.from(err).message}`, 'error');
    } finally {
      setBusy(false);
    }
  };
  return html`<div
    class=${['pager-bubble', 'meet-bubble', mine && 'mine', marks.length > 0 && `marked marked-${marks[0].kind}`].filter(Boolean).join(' ')}
    data-testid=${`meet-msg-${said.message_id}`}
    data-mark=${marks[0]?.kind ?? ''}
  >
    <div class="pager-bubble-head">
      <strong class="meet-from">${said.from.name}</strong>
      <${Time} iso=${said.at} />
    </div>
    <div class="pager-body-text">${said.body}</div>
    ${marks.length > 0
      ? html`<div class="meet-tags">${marks.map((k) => html`<${MarkTag} key=${k.mark_id} kind=${k.kind} mark=${k} />`)}</div>`
      : null}
    ${chair && (!has('decision') || !has('action'))
      ? html`<div class="meet-mark-tools">
          ${has('decision')
            ? null
            : html`<button
                type="button"
                class="link"
                data-testid=${`meet-mark-decision-${said.message_id}`}
                disabled=${busy}
                onClick=${() => void decide()}
              >
                ${t('meet.mark_decision')}
              </button>`}
          ${has('action')
            ? null
            : html`<button
                type="button"
                class="link"
                data-testid=${`meet-mark-action-${said.message_id}`}
                onClick=${() => props.onAction(said)}
              >
                ${t('meet.mark_action')}
              </button>`}
        </div>`
      : null}
  </div>`;
}

function PendingBubble({ meet, room, p }: { meet: MeetingsModel; room: Room; p: Pending }) {
  return html`<div
    class=${`pager-bubble meet-bubble mine pending${p.error ? ' failed' : ''}`}
    data-testid="meet-pending"
    data-state=${p.error ? 'failed' : 'sending'}
  >
    <div class="pager-bubble-head">
      <span>${p.error ? t('meet.send_failed') : t('meet.sending')}</span>
    </div>
    <div class="pager-body-text">${p.body}</div>
    ${p.error
      ? html`<div class="meet-mark-tools">
          <span class="muted small">${p.error.message}</span>
          <button type="button" class="link" data-testid="meet-retry" onClick=${() => void meet.retry(room.id, p).catch(() => undefined)}>
            ${t('meet.retry')}
          </button>
          <button type="button" class="link" onClick=${() => meet.discard(room.id, p)}>${t('meet.discard')}</button>
        </div>`
      : null}
  </div>`;
}

function Transcript({ meet, room, chair, onAction }: { meet: MeetingsModel; room: Room; chair: boolean; onAction: (s: MeetingSaid) => void }) {
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const count = room.messages.length + room.pending.length;
  // Follow the conversation, unless the reader scrolled up to read back.
  useEffect(() => {
    const box = scroller.current;
    if (box && stick.current) box.scrollTop = box.scrollHeight;
  }, [count, room.id]);
  return html`<div
    class="pager-thread-scroll meet-transcript"
    data-testid="meet-transcript"
    ref=${scroller}
    onScroll=${() => {
      const box = scroller.current;
      if (box) stick.current = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    }}
  >
    ${room.messages.length === 0 && room.pending.length === 0
      ? html`<div class="empty">${room.loading ? t('board.loading') : t('meet.transcript_empty')}</div>`
      : null}
    ${room.messages.map(
      (m) => html`<${Bubble} key=${m.message_id} meet=${meet} room=${room} said=${m} chair=${chair} onAction=${onAction} />`,
    )}
    ${room.pending.map((p) => html`<${PendingBubble} key=${p.client_msg_id} meet=${meet} room=${room} p=${p} />`)}
  </div>`;
}

function InputBox({ meet, room }: { meet: MeetingsModel; room: Room }) {
  const [body, setBody] = useState('');
  const textarea = useRef<HTMLTextAreaElement>(null);
  // Before the browser regains control: after paint, it would wipe what was typed meanwhile.
  useLayoutEffect(() => {
    setBody('');
    textarea.current?.focus();
  }, [room.id]);
  const send = () => {
    const text = body.trim();
    if (!text) return;
    setBody('');
    // A fresh key for these words; the pending bubble's "retry" reuses it.
    void meet.say(room.id, text).catch(() => undefined);
    textarea.current?.focus();
  };
  return html`<form
    class="pager-reply meet-input"
    onSubmit=${(e: Event) => {
      e.preventDefault();
      send();
    }}
  >
    <textarea
      ref=${textarea}
      rows="2"
      maxlength="5000"
      data-testid="meet-input"
      placeholder=${t('meet.input_placeholder')}
      value=${body}
      onInput=${(e: Event) => setBody(value(e))}
      onKeyDown=${(e: KeyboardEvent) => {
        if (e.key === 'Enter' && !e.shiftKey && !composing(e)) {
          e.preventDefault();
          send();
        }
      }}
    ></textarea>
    <div class="pager-reply-tools">
      <span class="pager-hint muted small">${t('meet.enter_hint')}</span>
      <button type="submit" class="btn btn-small btn-primary" data-testid="meet-send" disabled=${!body.trim()}>${t('meet.send')}</button>
    </div>
  </form>`;
}

function ActionDialog({ meet, room, said, onDone }: { meet: MeetingsModel; room: Room; said: MeetingSaid; onDone: () => void }) {
  const people = room.meeting?.participants ?? [];
  const [assignee, setAssignee] = useState(people.some((p) => p.id === said.from.id) ? said.from.id : '');
  const [due, setDue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async () => {
    let dueIso: string | null = null;
    if (due) {
      const date = new Date(due);
      if (Number.isNaN(date.getTime())) return setError(badRequest(t('meet.bad_time')));
      dueIso = date.toISOString();
    }
    setBusy(true);
    setError(null);
    try {
      await meet.mark(room.id, said.message_id, 'action', assignee || null, dueIso);
      onDone();
    } catch (err) {
      setError(ApiError.from(err));
      setBusy(false);
    }
  };
  return html`<${Modal} testid="meet-mark-dialog" title=${t('meet.mark_action')} onCancel=${onDone} onSubmit=${() => void submit()}>
    <blockquote class="meet-quote"><strong>${said.from.name}</strong>：${said.body}</blockquote>
    <label class="field">
      <span class="field-label">${t('meet.assignee')}</span>
      <select data-testid="meet-assignee" value=${assignee} onChange=${(e: Event) => setAssignee(value(e))}>
        <option value="">${t('meet.unassigned')}</option>
        ${people.map((p) => html`<option key=${p.id} value=${p.id}>${p.name}</option>`)}
      </select>
    </label>
    <label class="field">
      <span class="field-label">${t('meet.due_optional')}</span>
      <input type="datetime-local" data-testid="meet-due" min=${localInputValue(new Date())} value=${due} onInput=${(e: Event) => setDue(value(e))} />
    </label>
    <${ErrorNote} error=${error} testid="meet-mark-error" />
    <div class="modal-actions">
      <button type="button" class="btn btn-ghost" onClick=${onDone}>${t('circ.cancel')}</button>
      <button type="submit" class="btn btn-primary" data-testid="meet-mark-confirm" disabled=${busy}>${t('meet.mark_confirm')}</button>
    </div>
  <//>`;
}

function HandoverDialog({ meet, room, onDone }: { meet: MeetingsModel; room: Room; onDone: () => void }) {
  const others = (room.meeting?.participants ?? []).filter((p) => p.id !== meet.myId);
  const [to, setTo] = useState(others.find((p) => room.present.has(p.id))?.id ?? others[0]?.id ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async () => {
    if (!to) return;
    setBusy(true);
    setError(null);
    try {
      await meet.handover(room.id, to);
      onDone();
    } catch (err) {
      setError(ApiError.from(err));
      setBusy(false);
    }
  };
  return html`<${Modal} testid="meet-handover-dialog" title=${t('meet.handover')} onCancel=${onDone} onSubmit=${() => void submit()}>
    <label class="field">
      <span class="field-label">${t('meet.handover_to')}</span>
      <select data-testid="meet-handover-to" value=${to} onChange=${(e: Event) => setTo(value(e))}>
        ${others.map(
          (p) => html`<option key=${p.id} value=${p.id}>${p.name}${room.present.has(p.id) ? '' : ` (${t('meet.away')})`}</option>`,
        )}
      </select>
    </label>
    <${ErrorNote} error=${error} testid="meet-handover-error" />
    <div class="modal-actions">
      <button type="button" class="btn btn-ghost" onClick=${onDone}>${t('circ.cancel')}</button>
      <button type="submit" class="btn btn-primary" data-testid="meet-handover-confirm" disabled=${busy || !to}>${t('meet.handover')}</button>
    </div>
  <//>`;
}

function CloseDialog({ meet, room, onDone }: { meet: MeetingsModel; room: Room; onDone: () => void }) {
  const [summary, setSummary] = useState('');
  const [circulate, setCirculate] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      await meet.closeMeeting(room.id, summary.trim(), circulate);
      toast(circulate ? t('meet.closed_circulated') : t('meet.closed_done'), 'success');
      onDone();
    } catch (err) {
      setError(ApiError.from(err));
      setBusy(false);
    }
  };
  return html`<${Modal} testid="meet-close-dialog" title=${t('meet.close')} onCancel=${onDone} onSubmit=${() => void submit()}>
    <p class="muted small meet-close-note">${t('meet.close_note')}</p>
    <label class="field">
      <span class="field-label">${t('meet.summary')}</span>
      <textarea
        rows="4"
        maxlength="20000"
        data-testid="meet-summary"
        placeholder=${t('meet.summary_placeholder')}
        value=${summary}
        onInput=${(e: Event) => setSummary(value(e))}
      ></textarea>
    </label>
    <label class="pager-check">
      <input
        type="checkbox"
        data-testid="meet-circulate"
        checked=${circulate}
        onChange=${(e: Event) => setCirculate((e.currentTarget as HTMLInputElement).checked)}
      />
      ${t('meet.circulate')}
    </label>
    <${ErrorNote} error=${error} testid="meet-close-error" />
    <div class="modal-actions">
      <button type="button" class="btn btn-ghost" onClick=${onDone}>${t('circ.cancel')}</button>
      <button type="submit" class="btn btn-danger" data-testid="meet-close-confirm" disabled=${busy}>
        ${busy ? t('meet.closing') : t('meet.close_confirm')}
      </button>
    </div>
  <//>`;
}

type Dialog = { kind: 'action'; said: MeetingSaid } | { kind: 'handover' } | { kind: 'close' } | null;

function RoomView({ meet, room }: { meet: MeetingsModel; room: Room }) {
  const [dialog, setDialog] = useState<Dialog>(null);
  useEffect(() => setDialog(null), [room.id]);
  const meeting = room.meeting;
  const item = meet.find(room.id);
  const title = meeting?.title ?? item?.title ?? '';
  const chair = meet.isChair(room) && !meeting?.closed_at;
  const done = () => setDialog(null);
  return html`<section
    class="card meet-room"
    data-testid=${`meet-room-${room.id}`}
    data-joined=${room.joined ? 'true' : 'false'}
    data-chair=${chair ? 'true' : 'false'}
    aria-labelledby="meet-room-title"
  >
    <div class="card-header">
      <h2 id="meet-room-title">${title}</h2>
      <div class="circ-actions">
        ${chair
          ? html`<button type="button" class="btn btn-small" data-testid="meet-handover" onClick=${() => setDialog({ kind: 'handover' })}>
                ⇄ ${t('meet.handover')}
              </button>
              <button type="button" class="btn btn-small btn-danger" data-testid="meet-close" onClick=${() => setDialog({ kind: 'close' })}>
                ■ ${t('meet.close')}
              </button>`
          : null}
        <button type="button" class="pager-chip-x" title=${t('meet.leave')} onClick=${() => meet.close()}>×</button>
      </div>
    </div>
    ${meeting
      ? html`<div class="circ-meta meet-meta">
          <span>${t('meet.chaired_by', { name: meeting.chair.id === meet.myId ? t('meet.me') : meeting.chair.name })}</span>
          ${meeting.starts_at ? html`<span>${t('meet.starts', { time: formatDayTime(meeting.starts_at) })}</span>` : null}
          ${room.joined ? null : html`<span class="meet-badge meet-badge-offline">${t('meet.not_joined')}</span>`}
        </div>`
      : null}
    ${meeting?.agenda ? html`<div class="meet-agenda"><span class="field-label">${t('meet.field_agenda')}</span><div class="pager-body-text">${meeting.agenda}</div></div>` : null}
    <${ErrorNote} error=${room.error} testid="meet-room-error" />
    <div class="meet-room-body">
      <div class="meet-talk">
        <${Transcript} meet=${meet} room=${room} chair=${chair} onAction=${(said: MeetingSaid) => setDialog({ kind: 'action', said })} />
        ${meeting && !meeting.closed_at ? html`<${InputBox} meet=${meet} room=${room} />` : null}
      </div>
      <${People} room=${room} me=${meet.myId} />
    </div>
    ${dialog?.kind === 'action' ? html`<${ActionDialog} meet=${meet} room=${room} said=${dialog.said} onDone=${done} />` : null}
    ${dialog?.kind === 'handover' ? html`<${HandoverDialog} meet=${meet} room=${room} onDone=${done} />` : null}
    ${dialog?.kind === 'close' ? html`<${CloseDialog} meet=${meet} room=${room} onDone=${done} />` : null}
  </section>`;
}

// --- the minutes ------------------------------------------------------------------------------

function MinutesView({ ctx, room, minutes }: { ctx: AppContext; room: Room; minutes: Minutes }) {
  const meet = ctx.meetings;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const id = room.id;
  const download = async () => {
    setBusy(true);
    setError(null);
    try {
      await meet.downloadMinutes(id);
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  const openCirculation = (cid: Id) => {
    location.hash = '#circulation';
    // The chair who closed the meeting sent the circulation; the others received it.
    ctx.circulation.select(minutes.chair.id === meet.myId ? 'sent' : 'inbox', cid);
  };
  const none = html`<p class="muted">${t('meet.none')}</p>`;
  const name = (p: PersonRef | null) => (p ? p.name : t('meet.unassigned'));
  return html`<section class="card meet-minutes" data-testid=${`meet-minutes-${id}`} aria-labelledby="meet-minutes-title">
    <div class="card-header">
      <h2 id="meet-minutes-title">${t('meet.minutes_title', { title: minutes.title })}</h2>
      <div class="circ-actions">
        ${minutes.circulation_id
          ? html`<button type="button" class="btn btn-small" data-testid="meet-minutes-circulation" onClick=${() => openCirculation(minutes.circulation_id as Id)}>
              📋 ${t('meet.minutes_circulated')}
            </button>`
          : null}
        <button type="button" class="btn btn-small btn-primary" data-testid="meet-minutes-md" disabled=${busy} onClick=${() => void download()}>
          ⬇ ${t('meet.download_md')}
        </button>
        <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => meet.close()}>×</button>
      </div>
    </div>
    <${ErrorNote} error=${error} testid="meet-minutes-error" />
    <dl class="meet-facts">
      <dt>${t('meet.chair')}</dt>
      <dd data-testid="meet-minutes-chair">${minutes.chair.name}</dd>
      <dt>${t('meet.time')}</dt>
      <dd><${Time} iso=${minutes.started_at} /> – <${Time} iso=${minutes.ended_at} /></dd>
      ${minutes.agenda ? html`<dt>${t('meet.field_agenda')}</dt><dd class="pager-body-text">${minutes.agenda}</dd>` : null}
    </dl>

    <div class="meet-minutes-grid">
      <div data-testid="meet-minutes-attendees" data-count=${minutes.attendees.length}>
        <h3>${t('meet.attendees')} <span class="muted small">${minutes.attendees.length}</span></h3>
        ${minutes.attendees.length
          ? html`<table class="pager-receipts-table">
              <thead>
                <tr><th>${t('circ.col.name')}</th><th>${t('meet.joined_at')}</th><th>${t('meet.left_at')}</th></tr>
              </thead>
              <tbody>
                ${minutes.attendees.map(
                  (a) => html`<tr key=${a.id} data-testid=${`meet-minutes-attendee-${a.id}`}>
                    <td>${a.name}</td>
                    <td><${Time} iso=${a.joined_at} /></td>
                    <td><${Time} iso=${a.left_at} /></td>
                  </tr>`,
                )}
              </tbody>
            </table>`
          : none}
      </div>
      <div data-testid="meet-minutes-absentees" data-count=${minutes.absentees.length}>
        <h3>${t('meet.absentees')} <span class="muted small">${minutes.absentees.length}</span></h3>
        ${minutes.absentees.length
          ? html`<ul class="meet-names">
              ${minutes.absentees.map((a) => html`<li key=${a.id} data-testid=${`meet-minutes-absentee-${a.id}`}>${a.name}</li>`)}
            </ul>`
          : none}
      </div>
    </div>

    <div class="meet-minutes-section" data-testid="meet-minutes-decisions" data-count=${minutes.decisions.length}>
      <h3>${t('meet.decisions')}</h3>
      ${minutes.decisions.length
        ? html`<ol>
            ${minutes.decisions.map(
              (d) => html`<li key=${d.mark_id} data-message-id=${d.message_id}>
                <span class="pager-body-text">${d.body}</span> <span class="muted small">（${d.by}）</span>
              </li>`,
            )}
          </ol>`
        : none}
    </div>

    <div class="meet-minutes-section" data-testid="meet-minutes-actions" data-count=${minutes.actions.length}>
      <h3>${t('meet.actions')}</h3>
      ${minutes.actions.length
        ? html`<table class="pager-receipts-table">
            <thead>
              <tr><th>${t('meet.action')}</th><th>${t('meet.assignee')}</th><th>${t('meet.due_col')}</th></tr>
            </thead>
            <tbody>
              ${minutes.actions.map(
                (a) => html`<tr key=${a.mark_id} data-message-id=${a.message_id}>
                  <td class="pager-body-text">${a.body}</td>
                  <td>${name(a.assignee)}</td>
                  <td><${Time} iso=${a.due} /></td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : none}
    </div>

    ${minutes.summary
      ? html`<div class="meet-minutes-section" data-testid="meet-minutes-summary">
          <h3>${t('meet.summary')}</h3>
          <div class="pager-body-text">${minutes.summary}</div>
        </div>`
      : null}

    <div class="meet-minutes-section" data-testid="meet-minutes-transcript">
      <h3>${t('meet.transcript')}</h3>
      ${minutes.transcript.length
        ? html`<ul class="meet-transcript-list">
            ${minutes.transcript.map(
              (s) => html`<li key=${s.message_id}>
                <span class="muted small"><${Time} iso=${s.at} /></span>
                <strong>${s.from.name}：</strong><span class="pager-body-text">${s.body}</span>
              </li>`,
            )}
          </ul>`
        : none}
    </div>
  </section>`;
}

// --- the panel and the pop-ups ----------------------------------------------------------------

function Main({ ctx }: { ctx: AppContext }) {
  const meet = ctx.meetings;
  const view = useStore(meet.view);
  const room = useStore(meet.room);
  if (view?.kind === 'new') return html`<${NewMeeting} ctx=${ctx} />`;
  if (view?.kind === 'room' && room?.id === view.id) {
    if (room.minutes) return html`<${MinutesView} key=${`m-${room.id}`} ctx=${ctx} room=${room} minutes=${room.minutes} />`;
    if (room.minutesError || (room.loading && (room.meeting?.closed_at || meet.find(room.id)?.closed_at))) {
      return html`<section class="card" data-testid="meet-minutes-loading">
        <${ErrorNote} error=${room.minutesError} testid="meet-minutes-error" />
        ${room.loading ? html`<div class="empty">${t('board.loading')}</div>` : null}
      </section>`;
    }
    return html`<${RoomView} key=${`r-${room.id}`} meet=${meet} room=${room} />`;
  }
  return html`<section class="card pager-detail-empty"><div class="empty">${t('meet.pick')}</div></section>`;
}

export function MeetingsPanel({ ctx }: { ctx: AppContext }) {
  const meet = ctx.meetings;
  useEffect(() => {
    void ctx.pager.loadDepartments();
    meet.visible.set(true);
    return () => meet.visible.set(false);
  }, [meet]);
  return html`<div class="pager-layout meet-layout">
    <div class="pager-side">
      <${Lists} meet=${meet} />
    </div>
    <div class="pager-main">
      <${Main} ctx=${ctx} />
    </div>
  </div>`;
}

/** Invitations and action items assigned to me, shown over whatever panel is open. */
export function MeetingPopups({ ctx }: { ctx: AppContext }) {
  const meet = ctx.meetings;
  const popups = useStore(meet.popups);
  if (popups.length === 0) return null;
  const open = (key: string, id: Id) => {
    meet.dismissPopup(key);
    location.hash = '#meetings';
    meet.enter(id);
  };
  return html`<div class="pager-popups meet-popups" role="alert" aria-live="assertive">
    ${popups.map((p) =>
      p.kind === 'invited'
        ? html`<${PopupCard}
            key=${p.key}
            testid="meet-popup"
            attrs=${{ 'data-meeting-id': p.meeting_id, 'data-kind': p.kind }}
            icon="👥"
            title=${p.title}
            badges=${html`<span class="meet-badge meet-badge-invite">${t('meet.popup_invited')}</span>`}
            body=${html`<div>${t('meet.invited_by', { name: p.from.name })}</div>${p.body ? html`<div class="muted">${p.body}</div>` : null}`}
            extra=${p.at ? html`<div class="small muted">${t('meet.starts', { time: formatDayTime(p.at) })}</div>` : null}
            onOpen=${() => open(p.key, p.meeting_id)}
            onClose=${() => meet.dismissPopup(p.key)}
            actions=${html`<button type="button" class="btn btn-small btn-primary" data-testid="meet-popup-join" onClick=${() => open(p.key, p.meeting_id)}>
              ${t('meet.join')}
            </button>`}
          />`
        : html`<${PopupCard}
            key=${p.key}
            testid="meet-action-popup"
            attrs=${{ 'data-meeting-id': p.meeting_id, 'data-kind': p.kind }}
            icon="☑"
            title=${t('meet.todo_title')}
            badges=${html`<span class="meet-badge meet-badge-action">${t('meet.action')}</span>`}
            body=${p.body}
            extra=${html`<div class="small muted">
              ${t('meet.todo_from', { name: p.from.name, title: p.title })}${p.at ? ` · ${t('meet.due', { time: formatDayTime(p.at) })}` : ''}
            </div>`}
            onOpen=${() => open(p.key, p.meeting_id)}
            onClose=${() => meet.dismissPopup(p.key)}
            actions=${html`<button type="button" class="btn btn-small" data-testid="meet-action-popup-ok" onClick=${() => meet.dismissPopup(p.key)}>
                ${t('meet.todo_ok')}
              </button>
              <button type="button" class="btn btn-small btn-primary" onClick=${() => open(p.key, p.meeting_id)}>${t('meet.open')}</button>`}
          />`,
    )}
  </div>`;
}
