// The circulation panel (传阅): inbox / sent with state filters, reading and confirming, the new
// circulation form with a small rich-text editor, the sender's live status board (counts, per
// recipient table, remind with countdown, recall, overdue banner), and the arrival pop-ups.
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  FILTERS,
  deadlineState,
  totalOf,
  type Board,
  type Box,
  type CirculationModel,
  type CircList,
  type Filter,
} from './circulation';
import { ErrorNote, PopupCard } from './components';
import {
  AttachButton,
  FileLinks,
  RecipientPicker,
  UploadList,
  newClientMsgId,
  uploadProblem,
  useUploads,
  type Recipient,
} from './compose';
import type { AppContext } from './context';
import { ApiError } from './http';
import { html } from './html';
import { formatAgo, formatDayTime, formatFull, localInputValue, t, type MessageKey } from './i18n';
import type { PagerModel } from './pager';
import { useStore } from './store';
import { toast } from './toast';
import type { CircCounts, CircItem, CircState, Id } from './types';

/** The body goes out in one frame: stay under the server's 64 KiB limit with room to spare. */
const MAX_BODY_BYTES = 60_000;

const badRequest = (message: string) => new ApiError({ code: 'bad_request', message });

function stateLabel(state: CircState): string {
  return t(`circ.state.${state}` as MessageKey);
}

/** Now, ticking every second until `until` (an ISO time) has passed. */
function useNow(until: string | null | undefined): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const target = until ? Date.parse(until) : NaN;
    setNow(Date.now());
    if (Number.isNaN(target) || target <= Date.now()) return undefined;
    const timer = setInterval(() => {
      setNow(Date.now());
      if (Date.now() >= target) clearInterval(timer);
    }, 1000);
    return () => clearInterval(timer);
  }, [until]);
  return now;
}

/** "4:59", "1:02:03" */
function countdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const pad = (n: number) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

// --- small pieces -------------------------------------------------------------------------------

function StateBadge({ state, testid }: { state: CircState; testid?: string }) {
  return html`<span class=${`circ-badge circ-state-${state}`} data-testid=${testid} data-state=${state}>${stateLabel(state)}</span>`;
}

function RecalledBadge() {
  return html`<span class="circ-badge circ-recalled-badge">${t('circ.recalled')}</span>`;
}

function Deadline({ deadline, done }: { deadline: string | null | undefined; done: boolean }) {
  const state = deadlineState(deadline, done);
  if (state === 'none' || !deadline) return null;
  const time = formatDayTime(deadline);
  const text =
    state === 'overdue'
      ? t('circ.deadline_over', { time })
      : state === 'near'
        ? t('circ.deadline_near', { time })
        : t('circ.deadline', { time });
  return html`<span class=${`circ-deadline ${state}`} data-state=${state} title=${formatFull(deadline)}>⏱ ${text}</span>`;
}

/** The three counts as a bar, confirmed · opened · unopened. */
function CountsBar({ counts, labels }: { counts: CircCounts; labels: boolean }) {
  const total = totalOf(counts) || 1;
  const parts: CircState[] = ['confirmed', 'opened', 'unopened'];
  return html`<div class="circ-counts">
    <div class="circ-bar" role="img" aria-label=${t('circ.progress', { done: counts.confirmed, total: totalOf(counts) })}>
      ${parts.map((p) =>
        counts[p] > 0 ? html`<span key=${p} class=${`circ-bar-${p}`} style=${{ width: `${(100 * counts[p]) / total}%` }}></span>` : null,
      )}
    </div>
    ${labels
      ? html`<div class="circ-legend">
          ${(['unopened', 'opened', 'confirmed'] as CircState[]).map(
            (p) => html`<span key=${p} class=${`circ-legend-item circ-legend-${p}`} data-testid=${`circ-count-${p}`} data-count=${counts[p]}>
              <i aria-hidden="true"></i>${stateLabel(p)} <strong>${counts[p]}</strong>
            </span>`,
          )}
        </div>`
      : null}
  </div>`;
}

// --- lists ------------------------------------------------------------------------------------

function ItemRow({ circ, item, box, active }: { circ: CirculationModel; item: CircItem; box: Box; active: boolean }) {
  const state = box === 'sent' ? 'sent' : (item.my_state ?? 'unopened');
  const unopened = box === 'inbox' && state === 'unopened' && !item.recalled;
  const done = box === 'sent' ? item.counts !== undefined && item.counts.confirmed === totalOf(item.counts) : state === 'confirmed';
  const select = () => circ.select(box, item.circulation_id);
  return html`<li
    class=${['pager-item', 'circ-item', unopened && 'unread', item.recalled && 'recalled', active && 'active'].filter(Boolean).join(' ')}
    data-testid=${`circ-item-${item.circulation_id}`}
    data-state=${state}
    data-recalled=${item.recalled ? 'true' : 'false'}
    tabindex="0"
    onClick=${select}
    onKeyDown=${(e: KeyboardEvent) => e.key === 'Enter' && select()}
  >
    <div class="pager-item-head">
      <span class="pager-item-who circ-item-title">${item.title}</span>
      <time class="pager-time" datetime=${item.sent_at} title=${formatFull(item.sent_at)}>${formatAgo(item.sent_at)}</time>
    </div>
    <div class="pager-item-foot circ-item-foot">
      ${box === 'inbox' ? html`<span class="muted">${t('circ.from', { name: item.from.name })}</span>` : null}
      ${item.recalled
        ? html`<${RecalledBadge} />`
        : box === 'inbox'
          ? html`<${StateBadge} state=${item.my_state ?? 'unopened'} />`
          : item.counts
            ? html`<span class=${`pager-summary${done ? ' all-read' : ''}`}>
                ${t('circ.progress', { done: item.counts.confirmed, total: totalOf(item.counts) })}
              </span>`
            : null}
      ${item.recalled ? null : html`<${Deadline} deadline=${item.deadline} done=${done} />`}
    </div>
    ${box === 'sent' && item.counts && totalOf(item.counts) > 0 && !item.recalled
      ? html`<${CountsBar} counts=${item.counts} labels=${false} />`
      : null}
  </li>`;
}

function ListBody({ circ, box, list }: { circ: CirculationModel; box: Box; list: CircList }) {
  const view = useStore(circ.view);
  const activeId = view?.kind === 'item' && view.box === box ? view.id : null;
  const empty = list.filter !== 'all' ? t('circ.filter_empty') : box === 'inbox' ? t('circ.inbox_empty') : t('circ.sent_empty');
  return html`<div>
    <ul class="pager-list" data-testid=${`circ-${box}`}>
      ${list.items.map(
        (c) => html`<${ItemRow} key=${c.circulation_id} circ=${circ} item=${c} box=${box} active=${c.circulation_id === activeId} />`,
      )}
    </ul>
    ${list.items.length === 0 && !list.error
      ? html`<div class="empty">${list.loading ? t('board.loading') : empty}</div>`
      : null}
    ${list.hasMore && list.items.length > 0
      ? html`<button
          type="button"
          class="btn btn-small btn-ghost btn-block"
          data-testid="circ-load-more"
          disabled=${list.loading}
          onClick=${() => void circ.loadList(box, true)}
        >
          ${list.loading ? t('board.loading') : t('pager.load_more')}
        </button>`
      : null}
  </div>`;
}

function Lists({ circ }: { circ: CirculationModel }) {
  const tab = useStore(circ.tab);
  const inbox = useStore(circ.lists.inbox);
  const sent = useStore(circ.lists.sent);
  const unread = useStore(circ.unread);
  const available = useStore(circ.available);
  const view = useStore(circ.view);
  const list = tab === 'inbox' ? inbox : sent;
  const tabButton = (box: Box, label: string, count: number) => html`<button
    type="button"
    role="tab"
    aria-selected=${tab === box}
    class=${`pager-tab${tab === box ? ' active' : ''}`}
    data-testid=${`circ-tab-${box}`}
    onClick=${() => circ.tab.set(box)}
  >
    ${label} ${count > 0 ? html`<span class="count-badge" data-testid="circ-unread-count">${count}</span>` : null}
  </button>`;
  return html`<section class="card pager-lists" aria-labelledby="circ-list-title">
    <div class="card-header">
      <h2 id="circ-list-title">${t('circ.title')}</h2>
      <button
        type="button"
        class=${`btn btn-small${view?.kind === 'compose' ? '' : ' btn-primary'}`}
        data-testid="circ-new"
        onClick=${() => circ.compose()}
      >
        ＋ ${t('circ.new')}
      </button>
    </div>
    <div class="pager-tabs" role="tablist">
      ${tabButton('inbox', t('circ.inbox'), unread)} ${tabButton('sent', t('circ.sent_box'), 0)}
    </div>
    <div class="circ-filters" role="group" aria-label=${t('circ.filter')}>
      ${FILTERS.map(
        (f: Filter) => html`<button
          key=${f}
          type="button"
          class=${`chip${list.filter === f ? ' chip-on' : ''}`}
          aria-pressed=${list.filter === f}
          data-testid=${`circ-filter-${f}`}
          onClick=${() => circ.setFilter(tab, f)}
        >
          ${f === 'all' ? t('circ.filter_all') : stateLabel(f)}
        </button>`,
      )}
    </div>
    ${available
      ? html`<${ErrorNote} error=${list.error} testid="circ-list-error" />`
      : html`<div class="error-note" role="alert" data-testid="circ-unavailable">${t('circ.unavailable')}</div>`}
    <${ListBody} circ=${circ} box=${tab} list=${list} />
  </section>`;
}

// --- reading ----------------------------------------------------------------------------------

function BodyHtml({ body }: { body: string }) {
  const ref = useRef<HTMLDivElement>(null);
  // Links in the text open beside the app, never in its place.
  useEffect(() => {
    ref.current?.querySelectorAll('a[href]').forEach((a) => {
      a.setAttribute('target', '_blank');
      a.setAttribute('rel', 'noopener noreferrer');
    });
  }, [body]);
  return html`<div class="circ-body-html" ref=${ref} dangerouslySetInnerHTML=${{ __html: body }}></div>`;
}

function ConfirmBox({ circ, id }: { circ: CirculationModel; id: Id }) {
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await circ.confirm(id, comment.trim());
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="circ-confirm form" onSubmit=${submit}>
    <label class="field">
      <span class="field-label">${t('circ.comment')}</span>
      <textarea
        rows="2"
        maxlength="1000"
        data-testid="circ-confirm-comment"
        placeholder=${t('circ.comment_placeholder')}
        value=${comment}
        onInput=${(e: Event) => setComment((e.currentTarget as HTMLTextAreaElement).value)}
      ></textarea>
    </label>
    <div class="circ-actions">
      <button type="submit" class="btn btn-primary" data-testid="circ-confirm" disabled=${busy}>
        ✓ ${busy ? t('circ.confirming') : t('circ.confirm')}
      </button>
    </div>
    <${ErrorNote} error=${error} testid="circ-confirm-error" />
  </form>`;
}

function ReadingView({ circ, id, sender }: { circ: CirculationModel; id: Id; sender: boolean }) {
  const reading = useStore(circ.reading);
  if (!reading || reading.id !== id) return null;
  const { detail } = reading;
  const header = (title: string) => html`<div class="card-header">
    <h2 class="circ-title-text">${title}</h2>
    <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => circ.close()}>×</button>
  </div>`;
  if (reading.recalled && !(detail && detail.my_state === null)) {
    const title = detail?.title ?? circ.find(id)?.title ?? '';
    return html`<section class="card circ-open recalled" data-testid=${`circ-open-${id}`} data-recalled="true">
      ${header(title)}
      <div class="circ-recalled-note" data-testid="circ-recalled">
        🚫 ${t('circ.recalled')} · ${sender ? t('circ.recalled_sender') : t('circ.recalled_note')}
      </div>
    </section>`;
  }
  if (!detail) {
    return html`<section class="card circ-open" data-testid=${`circ-open-${id}`}>
      ${header(circ.find(id)?.title ?? '')}
      <${ErrorNote} error=${reading.error} testid="circ-open-error" />
      ${reading.loading ? html`<div class="empty">${t('board.loading')}</div>` : null}
    </section>`;
  }
  const mine = detail.my_state === null;
  const confirmed = detail.my_state === 'confirmed';
  return html`<section
    class=${`card circ-open${detail.recalled ? ' recalled' : ''}`}
    data-testid=${`circ-open-${id}`}
    data-recalled=${detail.recalled ? 'true' : 'false'}
  >
    ${header(detail.title)}
    <div class="circ-meta">
      <span>${t('circ.from', { name: detail.from.name })}</span>
      <time datetime=${detail.sent_at} title=${formatFull(detail.sent_at)}>${formatDayTime(detail.sent_at)}</time>
      ${detail.recipients_count ? html`<span class="muted">${t('circ.n_people', { n: detail.recipients_count })}</span>` : null}
      ${detail.recalled ? html`<${RecalledBadge} />` : html`<${Deadline} deadline=${detail.deadline} done=${confirmed} />`}
    </div>
    ${detail.recalled && mine ? html`<div class="circ-recalled-note">🚫 ${t('circ.recalled_sender')}</div>` : null}
    <${BodyHtml} body=${detail.body} />
    <${FileLinks} files=${detail.attachments} prefix="circ" />
    ${mine
      ? null
      : html`<div class="circ-mine">
          <div class="circ-my-line">
            <span class="field-label">${t('circ.my_state')}</span>
            <${StateBadge} state=${detail.my_state} testid="circ-my-state" />
            ${confirmed && detail.confirmed_at
              ? html`<span class="circ-confirmed-at">${t('circ.confirmed_at', { time: formatDayTime(detail.confirmed_at) })}</span>`
              : null}
          </div>
          ${confirmed
            ? detail.my_comment
              ? html`<div class="circ-my-comment" data-testid="circ-my-comment">${t('circ.my_comment', { comment: detail.my_comment })}</div>`
              : null
            : html`<${ConfirmBox} key=${id} circ=${circ} id=${id} />`}
        </div>`}
  </section>`;
}

// --- the sender's status board ----------------------------------------------------------------

function RemindButton({ circ, id, allowedAt, disabled }: { circ: CirculationModel; id: Id; allowedAt: string | null; disabled: boolean }) {
  const now = useNow(allowedAt);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const wait = allowedAt ? Date.parse(allowedAt) - now : 0;
  const waiting = wait > 0 && !disabled;
  const remind = async () => {
    setBusy(true);
    setError(null);
    try {
      const answer = await circ.remind(id);
      const n = Number(answer?.reminded) || 0;
      const sms = Number(answer?.sms) || 0;
      toast(sms > 0 ? t('circ.reminded_sms', { n, sms }) : t('circ.reminded', { n }), 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="circ-remind-wrap">
    <button
      type="button"
      class="btn btn-small"
      data-testid="circ-remind"
      data-allowed-at=${allowedAt ?? ''}
      disabled=${disabled || busy || wait > 0}
      onClick=${remind}
    >
      🔔 ${busy ? t('circ.reminding') : waiting ? t('circ.remind_wait', { time: countdown(wait) }) : t('circ.remind')}
    </button>
    ${error && error.code !== 'rate_limited' ? html`<${ErrorNote} error=${error} testid="circ-remind-error" />` : null}
  </span>`;
}

function RecallButton({ circ, id, title, disabled }: { circ: CirculationModel; id: Id; title: string; disabled: boolean }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const recall = async () => {
    if (!window.confirm(t('circ.recall_confirm', { title }))) return;
    setBusy(true);
    setError(null);
    try {
      await circ.recall(id);
      toast(t('circ.recalled_done'), 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<span>
    <button type="button" class="btn btn-small btn-ghost circ-recall" data-testid="circ-recall" disabled=${disabled || busy} onClick=${recall}>
      ↩ ${t('circ.recall')}
    </button>
    <${ErrorNote} error=${error} testid="circ-recall-error" />
  </span>`;
}

function OverdueBanner({ board, deadline, recalled }: { board: Board; deadline: string | null; recalled: boolean }) {
  const rows = board.status?.recipients ?? [];
  const pending = rows.filter((r) => r.state !== 'confirmed');
  // Pushed when the deadline passes; also shown when we open one already past it.
  const people = board.overdue ?? (deadlineState(deadline, false) === 'overdue' ? pending.map((r) => ({ id: r.user_id, name: r.name })) : []);
  // Who confirmed since the push no longer counts.
  const still = board.overdue && rows.length ? people.filter((p) => pending.some((r) => r.user_id === p.id)) : people;
  if (recalled || still.length === 0) return null;
  return html`<div class="circ-overdue" role="alert" data-testid="circ-overdue" data-count=${still.length}>
    ⚠ ${t('circ.overdue_banner', { n: still.length, names: still.map((p) => p.name).join(t('pager.sep')) })}
  </div>`;
}

function StatusBoard({ circ, id }: { circ: CirculationModel; id: Id }) {
  const board = useStore(circ.boards)[id];
  const reading = useStore(circ.reading);
  const sent = useStore(circ.lists.sent);
  const item = sent.items.find((c) => c.circulation_id === id);
  const detail = reading?.id === id ? reading.detail : null;
  const recalled = Boolean(item?.recalled || detail?.recalled);
  const deadline = detail?.deadline ?? item?.deadline ?? null;
  const title = detail?.title ?? item?.title ?? '';
  const status = board?.status ?? null;
  const counts = status?.counts ?? item?.counts ?? { unopened: 0, opened: 0, confirmed: 0 };
  const pending = counts.unopened + counts.opened;
  const cell = (iso: string | null) =>
    iso ? html`<time datetime=${iso} title=${formatFull(iso)}>${formatDayTime(iso)}</time>` : html`<span class="muted">—</span>`;
  return html`<section class="card circ-status" data-testid=${`circ-status-${id}`} data-recalled=${recalled ? 'true' : 'false'}>
    <div class="card-header">
      <h2>${t('circ.status_title')} ${recalled ? html`<${RecalledBadge} />` : null}</h2>
      <div class="circ-actions">
        <${RemindButton}
          circ=${circ}
          id=${id}
          allowedAt=${status?.remind_allowed_at ?? null}
          disabled=${recalled || !status || pending === 0}
        />
        <${RecallButton} circ=${circ} id=${id} title=${title} disabled=${recalled} />
      </div>
    </div>
    ${board ? html`<${OverdueBanner} board=${board} deadline=${deadline} recalled=${recalled} />` : null}
    <${CountsBar} counts=${counts} labels=${true} />
    ${status && pending === 0 && totalOf(counts) > 0 ? html`<div class="ok-note circ-all-done">✓ ${t('circ.all_confirmed')}</div>` : null}
    <${ErrorNote} error=${board?.error ?? null} testid="circ-status-error" />
    <table class="pager-receipts-table circ-table">
      <thead>
        <tr>
          <th>${t('circ.col.name')}</th>
          <th>${t('circ.col.state')}</th>
          <th>${t('circ.col.opened')}</th>
          <th>${t('circ.col.confirmed')}</th>
          <th>${t('circ.col.comment')}</th>
        </tr>
      </thead>
      <tbody>
        ${(status?.recipients ?? []).map(
          (r) => html`<tr key=${r.user_id} class=${`circ-row-${r.state}`} data-testid=${`circ-row-${id}-${r.user_id}`} data-state=${r.state}>
            <td>${r.name || r.user_id}</td>
            <td><${StateBadge} state=${r.state} /></td>
            <td>${cell(r.opened_at)}</td>
            <td>${cell(r.confirmed_at)}</td>
            <td class="circ-comment">${r.comment || html`<span class="muted">—</span>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${!status && (board?.loading ?? true) ? html`<div class="empty">${t('board.loading')}</div>` : null}
  </section>`;
}

// --- the new circulation form -----------------------------------------------------------------

const TOOLS: { cmd: string; key: MessageKey; label: string; cls?: string }[] = [
  { cmd: 'bold', key: 'circ.fmt.bold', label: 'B', cls: 'b' },
  { cmd: 'italic', key: 'circ.fmt.italic', label: 'I', cls: 'i' },
  { cmd: 'underline', key: 'circ.fmt.underline', label: 'U', cls: 'u' },
  { cmd: 'insertUnorderedList', key: 'circ.fmt.ul', label: '• ≡' },
  { cmd: 'insertOrderedList', key: 'circ.fmt.ol', label: '1. ≡' },
  { cmd: 'createLink', key: 'circ.fmt.link', label: '🔗' },
  { cmd: 'removeFormat', key: 'circ.fmt.clear', label: '⌫' },
];

function hasText(el: HTMLElement | null): boolean {
  return Boolean(el && ((el.textContent ?? '').trim() !== '' || el.querySelector('img, li')));
}

/** contenteditable with a toolbar (document.execCommand); the form reads its innerHTML. */
function RichEditor({ editor, empty, onInput }: { editor: { current: HTMLDivElement | null }; empty: boolean; onInput: () => void }) {
  const run = (cmd: string) => {
    const el = editor.current;
    if (!el) return;
    el.focus();
    if (cmd === 'createLink') {
      const url = window.prompt(t('circ.link_prompt'), 'https://')?.trim();
      if (!url || !/^(https?:\/\/|mailto:)/i.test(url)) return;
      document.execCommand('createLink', false, url);
    } else {
      document.execCommand(cmd, false);
    }
    onInput();
  };
  return html`<div class="circ-editor-wrap">
    <div class="circ-toolbar" role="toolbar" aria-label=${t('circ.field_body')}>
      ${TOOLS.map(
        (tool) => html`<button
          key=${tool.cmd}
          type="button"
          class=${`circ-tool ${tool.cls ?? ''}`}
          title=${t(tool.key)}
          aria-label=${t(tool.key)}
          data-testid=${`circ-fmt-${tool.cmd}`}
          onMouseDown=${(e: Event) => e.preventDefault()}
          onClick=${() => run(tool.cmd)}
        >
          ${tool.label}
        </button>`,
      )}
    </div>
    <div
      ref=${editor}
      class=${`circ-editor${empty ? ' is-empty' : ''}`}
      contenteditable="true"
      role="textbox"
      aria-multiline="true"
      aria-label=${t('circ.field_body')}
      data-placeholder=${t('circ.body_placeholder')}
      data-testid="circ-body"
      onInput=${onInput}
      onFocus=${() => {
        try {
          document.execCommand('defaultParagraphSeparator', false, 'p');
        } catch {
          // older browsers keep their own
        }
        // Start in a paragraph, so the first line is one like the others.
        const el = editor.current;
        if (el && el.innerHTML === '') {
          el.innerHTML = '<p><br></p>';
          const range = document.createRange();
          range.setStart(el.firstChild as Node, 0);
          range.collapse(true);
          const selection = window.getSelection();
          selection?.removeAllRanges();
          selection?.addRange(range);
        }
      }}
    ></div>
  </div>`;
}

function Compose({ circ, people }: { circ: CirculationModel; people: PagerModel }) {
  const [title, setTitle] = useState('');
  const [recipients, setRecipients] = useState<Recipient[]>([]);
  const [deadline, setDeadline] = useState('');
  const [empty, setEmpty] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const uploads = useUploads();
  const editor = useRef<HTMLDivElement>(null);
  // One key per circulation written: a retry after a failure or timeout reuses it.
  const clientMsgId = useRef(newClientMsgId());

  useEffect(() => {
    void people.loadDepartments();
  }, [people]);

  const send = async () => {
    const text = title.trim();
    const body = editor.current?.innerHTML ?? '';
    if (!text) return setError(badRequest(t('circ.need_title')));
    if (!hasText(editor.current)) return setError(badRequest(t('circ.need_body')));
    if (new Blob([body]).size > MAX_BODY_BYTES) return setError(badRequest(t('circ.body_too_long')));
    if (recipients.length === 0) return setError(badRequest(t('circ.need_recipient')));
    let due: string | null = null;
    if (deadline) {
      const date = new Date(deadline);
      if (Number.isNaN(date.getTime()) || date.getTime() <= Date.now()) return setError(badRequest(t('circ.deadline_past')));
      due = date.toISOString();
    }
    const problem = uploadProblem(uploads);
    if (problem) return setError(badRequest(problem));
    setBusy(true);
    setError(null);
    try {
      const answer = await circ.create(
        { title: text, body, recipients, attachments: uploads.files, deadline: due },
        clientMsgId.current,
      );
      clientMsgId.current = newClientMsgId();
      toast(t('circ.sent', { n: Number(answer.recipients_count) || 0 }), 'success');
    } catch (err) {
      setError(ApiError.from(err));
      setBusy(false);
    }
  };

  return html`<section class="card circ-compose" data-testid="circ-compose" aria-labelledby="circ-compose-title">
    <div class="card-header">
      <h2 id="circ-compose-title">${t('circ.form_title')}</h2>
      <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => circ.close()}>×</button>
    </div>
    <form
      class="form"
      onSubmit=${(e: Event) => {
        e.preventDefault();
        void send();
      }}
    >
      <label class="field">
        <span class="field-label">${t('circ.field_title')}</span>
        <input
          type="text"
          maxlength="200"
          data-testid="circ-title"
          placeholder=${t('circ.title_placeholder')}
          value=${title}
          onInput=${(e: Event) => setTitle((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      <div class="field">
        <span class="field-label">${t('circ.field_body')}</span>
        <${RichEditor} editor=${editor} empty=${empty} onInput=${() => setEmpty(!hasText(editor.current))} />
      </div>
      <${RecipientPicker} source=${people} prefix="circ" label=${t('circ.field_to')} chosen=${recipients} onChange=${setRecipients} />
      <label class="field circ-deadline-field">
        <span class="field-label">${t('circ.field_deadline')}</span>
        <input
          type="datetime-local"
          data-testid="circ-deadline"
          min=${localInputValue(new Date())}
          value=${deadline}
          onInput=${(e: Event) => setDeadline((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      <${UploadList} uploads=${uploads} prefix="circ" />
      <div class="pager-compose-tools">
        <${AttachButton} uploads=${uploads} prefix="circ" />
        <span class="pager-hint muted"></span>
        <button type="button" class="btn" onClick=${() => circ.close()}>${t('circ.cancel')}</button>
        <button type="submit" class="btn btn-primary" data-testid="circ-send" disabled=${busy}>
          ${busy ? t('circ.sending') : t('circ.send')}
        </button>
      </div>
      <${ErrorNote} error=${error} testid="circ-error" />
    </form>
  </section>`;
}

// --- the panel and the pop-ups ----------------------------------------------------------------

function Main({ ctx }: { ctx: AppContext }) {
  const { circulation: circ } = ctx;
  const view = useStore(circ.view);
  if (view?.kind === 'compose') return html`<${Compose} circ=${circ} people=${ctx.pager} />`;
  if (view?.kind === 'item') {
    return html`<div class="pager-main">
      ${view.box === 'sent' ? html`<${StatusBoard} key=${`s-${view.id}`} circ=${circ} id=${view.id} />` : null}
      <${ReadingView} key=${`r-${view.id}`} circ=${circ} id=${view.id} sender=${view.box === 'sent'} />
    </div>`;
  }
  return html`<section class="card pager-detail-empty"><div class="empty">${t('circ.pick')}</div></section>`;
}

export function CirculationPanel({ ctx }: { ctx: AppContext }) {
  return html`<div class="pager-layout circ-layout">
    <div class="pager-side">
      <${Lists} circ=${ctx.circulation} />
    </div>
    <div class="pager-main">
      <${Main} ctx=${ctx} />
    </div>
  </div>`;
}

/** Circulations as they arrive, and reminders, shown over whatever panel is open. */
export function CirculationPopups({ ctx }: { ctx: AppContext }) {
  const circ = ctx.circulation;
  const popups = useStore(circ.popups);
  if (popups.length === 0) return null;
  const open = (id: Id) => {
    location.hash = '#circulation';
    circ.select('inbox', id);
  };
  return html`<div class="pager-popups circ-popups" role="alert" aria-live="assertive">
    ${popups.map(
      (p) => html`<${PopupCard}
        key=${p.key}
        testid="circ-popup"
        attrs=${{ 'data-circulation-id': p.circulation_id, 'data-kind': p.kind }}
        urgent=${p.kind === 'reminder'}
        icon=${p.kind === 'reminder' ? '⏰' : '📋'}
        title=${p.from.name}
        badges=${html`<span class=${`circ-badge circ-popup-${p.kind}`}>
          ${p.kind === 'reminder' ? t('circ.popup_reminder') : t('circ.popup_received')}
        </span>`}
        body=${p.title}
        extra=${p.deadline ? html`<div class="small"><${Deadline} deadline=${p.deadline} done=${false} /></div>` : null}
        onOpen=${() => open(p.circulation_id)}
        onClose=${() => circ.dismissPopup(p.key)}
        actions=${html`<button type="button" class="btn btn-small btn-primary" data-testid="circ-popup-open" onClick=${() => open(p.circulation_id)}>
          ${t('circ.popup_open')}
        </button>`}
      />`,
    )}
  </div>`;
}
