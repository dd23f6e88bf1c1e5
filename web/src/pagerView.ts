// The pager panel (网络寻呼): compose, inbox / sent / search, the conversation with one person,
// receipts of what I sent, alert and SMS settings, and the pop-up for pages as they arrive.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { notifyPermission, requestNotify, setSound, soundOn } from './alert';
import { ErrorNote, PopupCard } from './components';
import {
  AttachButton,
  FileLinks,
  RecipientPicker,
  UploadList,
  composing,
  newClientMsgId,
  uploadProblem,
  useUploads,
  type Recipient,
} from './compose';
import type { AppContext } from './context';
import { ApiError } from './http';
import { html } from './html';
import { formatAgo, formatDayTime, formatFull, hasKey, t } from './i18n';
import { receiptState, summarize, type PagerModel, type Paged, type Receipts } from './pager';
import { Store, useStore } from './store';
import { toast } from './toast';
import type { FileInfo, Id, PagerMessage, PagerPrefs, Priority, SmsFallback } from './types';

type Tab = 'inbox' | 'sent';
/** Which list is shown; a module store so that sending can switch to "sent". */
const listTab = new Store<Tab>('inbox');

const input = (e: Event) => (e.currentTarget as HTMLInputElement).value;
const checked = (e: Event) => (e.currentTarget as HTMLInputElement).checked;

// --- small pieces -------------------------------------------------------------------------------

/** Ctrl+Enter (⌘+Enter) sends, unless an input method is still composing. */
function sendOnCtrlEnter(send: () => Promise<void> | void) {
  return (e: KeyboardEvent) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !composing(e)) {
      e.preventDefault();
      void send();
    }
  };
}

/** The 紧急 (urgent) switch of the compose form and the reply box. */
function UrgentToggle(props: { urgent: boolean; setUrgent: (v: boolean) => void; testid: string }) {
  return html`<label class=${`pager-urgent-toggle${props.urgent ? ' on' : ''}`}>
    <input
      type="checkbox"
      data-testid=${props.testid}
      checked=${props.urgent}
      onChange=${(e: Event) => props.setUrgent(checked(e))}
    />
    ${t('pager.urgent')}
  </label>`;
}

function UrgentBadge({ message }: { message: PagerMessage }) {
  return message.priority === 'urgent' ? html`<span class="pager-urgent-badge">${t('pager.urgent')}</span>` : null;
}

function ViaSms({ message }: { message: PagerMessage }) {
  return message.via === 'sms' ? html`<span class="pager-via-sms" data-testid="pager-via-sms">📱 ${t('pager.via_sms')}</span>` : null;
}

function Attachments({ files }: { files: FileInfo[] | undefined }) {
  return html`<${FileLinks} files=${files} prefix="pager" />`;
}

function SummaryText({ message, receipts, testid }: { message: PagerMessage; receipts?: Receipts; testid?: string }) {
  const s = summarize(message, receipts);
  if (!s || s.total === 0) return null;
  const all = s.read === s.total;
  return html`<span class=${`pager-summary${all ? ' all-read' : ''}`} data-testid=${testid} data-read=${s.read} data-total=${s.total}>
    ${t('pager.summary_read', { read: s.read, total: s.total })}
  </span>`;
}

function recipientsLine(m: PagerMessage): string {
  const to = m.to ?? [];
  const count = m.recipients_count ?? 0;
  // Through departments `to` lists the people they reached, so name the departments instead.
  if (m.departments?.length) {
    const names = m.departments.map((d) => d.name).join(t('pager.sep'));
    return count > 0 ? `${names} ${t('pager.n_people', { n: count })}` : names;
  }
  const names = to.map((p) => p.name).join(t('pager.sep'));
  return count > to.length ? t('pager.and_more', { names, n: count }) : names;
}

// --- compose ----------------------------------------------------------------------------------

function Compose({ pager }: { pager: PagerModel }) {
  const [recipients, setRecipients] = useState<Recipient[]>([]);
  const [body, setBody] = useState('');
  const [urgent, setUrgent] = useState(false);
  const uploads = useUploads();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  // One key per composed page: a retry after a failure or timeout reuses it.
  const clientMsgId = useRef(newClientMsgId());

  const send = async () => {
    const text = body.trim();
    if (recipients.length === 0) return setError(new ApiError({ code: 'bad_request', message: t('pager.need_recipient') }));
    if (!text) return setError(new ApiError({ code: 'bad_request', message: t('pager.need_body') }));
    const problem = uploadProblem(uploads);
    if (problem) return setError(new ApiError({ code: 'bad_request', message: problem }));
    setBusy(true);
    setError(null);
    try {
      const priority: Priority = urgent ? 'urgent' : 'normal';
      await pager.send({ recipients, body: text, priority, attachments: uploads.files }, clientMsgId.current);
      clientMsgId.current = newClientMsgId();
      setRecipients([]);
      setBody('');
      setUrgent(false);
      uploads.clear();
      listTab.set('sent');
      toast(t('pager.sent'), 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };

  return html`<section
    class=${`card pager-compose${urgent ? ' urgent' : ''}`}
    data-testid="pager-compose"
    aria-labelledby="pager-compose-title"
  >
    <div class="card-header"><h2 id="pager-compose-title">${t('pager.compose')}</h2></div>
    <form
      class="form"
      onSubmit=${(e: Event) => {
        e.preventDefault();
        void send();
      }}
    >
      <${RecipientPicker} source=${pager} prefix="pager" chosen=${recipients} onChange=${setRecipients} />
      <label class="field">
        <span class="field-label">${t('pager.body')}</span>
        <textarea
          rows="4"
          maxlength="5000"
          data-testid="pager-body"
          placeholder=${t('pager.body_placeholder')}
          value=${body}
          onInput=${(e: Event) => setBody((e.currentTarget as HTMLTextAreaElement).value)}
          onKeyDown=${sendOnCtrlEnter(send)}
        ></textarea>
      </label>
      <${UploadList} uploads=${uploads} prefix="pager" />
      <div class="pager-compose-tools">
        <${UrgentToggle} urgent=${urgent} setUrgent=${setUrgent} testid="pager-urgent" />
        <${AttachButton} uploads=${uploads} prefix="pager" />
        <span class="pager-hint muted">${t('pager.ctrl_enter')}</span>
        <button type="submit" class=${`btn ${urgent ? 'btn-danger' : 'btn-primary'}`} data-testid="pager-send" disabled=${busy}>
          ${busy ? t('pager.sending') : t('pager.send')}
        </button>
      </div>
      <${ErrorNote} error=${error} testid="pager-error" />
    </form>
  </section>`;
}

// --- lists ------------------------------------------------------------------------------------

function MessageItem({ pager, message, active }: { pager: PagerModel; message: PagerMessage; active: boolean }) {
  const receipts = useStore(pager.receipts)[message.message_id];
  const mine = pager.isMine(message);
  const unread = pager.isUnread(message);
  const state = mine ? 'sent' : unread ? 'unread' : 'read';
  const who = mine ? t('pager.to_line', { names: recipientsLine(message) }) : message.from.name;
  return html`<li
    class=${`pager-item ${state}${message.priority === 'urgent' ? ' urgent' : ''}${active ? ' active' : ''}`}
    data-testid=${`pager-item-${message.message_id}`}
    data-state=${state}
    data-priority=${message.priority}
    tabindex="0"
    onClick=${() => void pager.select(message.message_id)}
    onKeyDown=${(e: KeyboardEvent) => e.key === 'Enter' && void pager.select(message.message_id)}
  >
    <div class="pager-item-head">
      <span class="pager-item-who">${who}</span>
      <${UrgentBadge} message=${message} />
      <time class="pager-time" datetime=${message.sent_at} title=${formatFull(message.sent_at)}>${formatAgo(message.sent_at)}</time>
    </div>
    <div class="pager-item-body">${message.body}</div>
    <div class="pager-item-foot">
      <${ViaSms} message=${message} />
      ${message.attachments?.length ? html`<span class="muted">📎 ${message.attachments.length}</span>` : null}
      ${mine ? html`<${SummaryText} message=${message} receipts=${receipts} />` : null}
    </div>
  </li>`;
}

function List(props: {
  pager: PagerModel;
  list: PagerMessage[];
  testid: string;
  empty: string;
  paged: Pick<Paged, 'hasMore' | 'loading'>;
  more: () => void;
}) {
  const { pager, list, paged } = props;
  const selection = useStore(pager.selection);
  const thread = useStore(pager.thread);
  const isActive = (id: Id) =>
    (selection?.kind === 'message' && selection.id === id) || (selection?.kind === 'thread' && thread?.focus === id);
  return html`<div>
    <ul class="pager-list" data-testid=${props.testid}>
      ${list.map((m) => html`<${MessageItem} key=${m.message_id} pager=${pager} message=${m} active=${isActive(m.message_id)} />`)}
    </ul>
    ${list.length === 0 && (paged.loading || props.empty)
      ? html`<div class="empty">${paged.loading ? t('board.loading') : props.empty}</div>`
      : null}
    ${paged.hasMore && list.length > 0
      ? html`<button
          type="button"
          class="btn btn-small btn-ghost btn-block"
          data-testid="pager-load-more"
          disabled=${paged.loading}
          onClick=${props.more}
        >
          ${paged.loading ? t('board.loading') : t('pager.load_more')}
        </button>`
      : null}
  </div>`;
}

function Lists({ pager }: { pager: PagerModel }) {
  const messages = useStore(pager.messages);
  const unread = useStore(pager.unread);
  const hasMore = useStore(pager.hasMore);
  const loading = useStore(pager.loading);
  const error = useStore(pager.error);
  const search = useStore(pager.search);
  const tab = useStore(listTab);
  const [query, setQuery] = useState(search?.query ?? '');
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const searchSoon = (value: string, delay: number) => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => void pager.runSearch(value), delay);
  };
  useEffect(() => () => clearTimeout(timer.current), []);

  const inbox = messages.filter((m) => !pager.isMine(m));
  const sent = messages.filter((m) => pager.isMine(m));
  return html`<section class="card pager-lists" aria-labelledby="pager-list-title">
    <div class="card-header">
      <h2 id="pager-list-title">${t('pager.title')}</h2>
      <input
        type="search"
        class="pager-search"
        data-testid="pager-search"
        maxlength="100"
        placeholder=${t('pager.search_placeholder')}
        value=${query}
        onInput=${(e: InputEvent) => {
          setQuery(input(e));
          if (!e.isComposing) searchSoon(input(e), 400);
        }}
        onCompositionEnd=${(e: CompositionEvent) => searchSoon(input(e), 400)}
        onKeyDown=${(e: KeyboardEvent) => {
          if (e.key === 'Enter' && !composing(e)) searchSoon(query, 0);
        }}
      />
    </div>
    ${search
      ? html`<div class="pager-search-head">
            <span>${t('pager.search_results', { query: search.query })}</span>
            <button type="button" class="link" onClick=${() => {
              setQuery('');
              void pager.runSearch('');
            }}>${t('pager.search_clear')}</button>
          </div>
          <${ErrorNote} error=${search.error} testid="pager-search-error" />
          <${List}
            pager=${pager}
            list=${search.messages}
            testid="pager-search-results"
            empty=${search.error ? '' : t('pager.search_none')}
            paged=${search}
            more=${() => void pager.searchMore()}
          />`
      : html`<div class="pager-tabs" role="tablist">
            <button
              type="button"
              role="tab"
              aria-selected=${tab === 'inbox'}
              class=${`pager-tab${tab === 'inbox' ? ' active' : ''}`}
              data-testid="pager-tab-inbox"
              onClick=${() => listTab.set('inbox')}
            >
              ${t('pager.inbox')}
              ${unread > 0 ? html` <span class="count-badge" data-testid="pager-unread-count">${unread}</span>` : null}
            </button>
            <button
              type="button"
              role="tab"
              aria-selected=${tab === 'sent'}
              class=${`pager-tab${tab === 'sent' ? ' active' : ''}`}
              data-testid="pager-tab-sent"
              onClick=${() => listTab.set('sent')}
            >
              ${t('pager.sent_box')}
            </button>
            ${tab === 'inbox' && unread > 0
              ? html`<button
                  type="button"
                  class="link pager-read-all"
                  data-testid="pager-read-all"
                  onClick=${() => void pager.markAllRead()}
                >
                  ${t('notes.mark_all_read')}
                </button>`
              : null}
          </div>
          <${ErrorNote} error=${error} testid="pager-list-error" />
          <${List}
            pager=${pager}
            list=${tab === 'inbox' ? inbox : sent}
            testid=${tab === 'inbox' ? 'pager-inbox' : 'pager-sent'}
            empty=${tab === 'inbox' ? t('pager.inbox_empty') : t('pager.sent_empty')}
            paged=${{ hasMore, loading }}
            more=${() => void pager.loadMore()}
          />`}
  </section>`;
}

// --- receipts ---------------------------------------------------------------------------------

function smsLabel(row: Receipts['rows'][number]): string {
  const parts: string[] = [];
  if (row.sms) {
    const key = `pager.sms_${row.sms.state}`;
    const state = ['sent', 'failed', 'queued'].includes(row.sms.state) && hasKey(key) ? t(key) : row.sms.state;
    parts.push(row.sms.at ? `${state} ${formatDayTime(row.sms.at)}` : state);
  }
  if (row.emailed_at) parts.push(`${t('pager.emailed')} ${formatDayTime(row.emailed_at)}`);
  return parts.join(t('pager.sep')) || '—';
}

function ReceiptsTable({ pager, id }: { pager: PagerModel; id: Id }) {
  const receipts = useStore(pager.receipts)[id];
  useStore(pager.namesVersion);
  const cell = (iso: string | null | undefined) =>
    iso ? html`<time datetime=${iso} title=${formatFull(iso)}>${formatDayTime(iso)}</time>` : html`<span class="muted">—</span>`;
  return html`<div class="pager-receipts">
    <${ErrorNote} error=${receipts?.error ?? null} />
    <table class="pager-receipts-table" data-testid=${`pager-receipts-${id}`}>
      <thead>
        <tr>
          <th>${t('pager.col.name')}</th>
          <th>${t('pager.col.delivered')}</th>
          <th>${t('pager.col.read')}</th>
          <th>${t('pager.col.sms')}</th>
        </tr>
      </thead>
      <tbody>
        ${(receipts?.rows ?? []).map((row) => {
          const state = receiptState(row);
          return html`<tr
            key=${row.user_id}
            class=${`receipt-${state}`}
            data-testid=${`receipt-${id}-${row.user_id}`}
            data-state=${state}
            data-sms=${row.sms?.state ?? ''}
          >
            <td>${row.name || pager.nameOf(row.user_id)}</td>
            <td>${cell(row.delivered_at)}</td>
            <td>${cell(row.read_at)}</td>
            <td class=${row.sms?.state === 'failed' ? 'pager-sms-failed' : ''}>${smsLabel(row)}</td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${!receipts ? html`<div class="empty">${t('board.loading')}</div>` : null}
  </div>`;
}

function SentDetail({ pager, id }: { pager: PagerModel; id: Id }) {
  const messages = useStore(pager.messages);
  const receipts = useStore(pager.receipts)[id];
  useStore(pager.thread);
  const message = messages.find((m) => m.message_id === id) ?? pager.find(id);
  if (!message) return null;
  const single = message.to?.length === 1 && !message.departments?.length ? message.to[0] : null;
  return html`<section
    class=${`card pager-detail${message.priority === 'urgent' ? ' urgent' : ''}`}
    data-testid="pager-detail"
    data-message-id=${id}
  >
    <div class="card-header">
      <h2>${t('pager.to_line', { names: recipientsLine(message) })} <${UrgentBadge} message=${message} /></h2>
      <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => pager.closeDetail()}>×</button>
    </div>
    <div class="pager-meta muted">
      <time datetime=${message.sent_at}>${formatFull(message.sent_at)}</time>
      ${single
        ? html` · <button type="button" class="link" data-testid="pager-open-thread" onClick=${() => void pager.openThread(single)}>
              ${t('pager.conversation_with', { name: single.name })}
            </button>`
        : null}
    </div>
    <div class="pager-body-text">${message.body}</div>
    <${Attachments} files=${message.attachments} />
    <div class="pager-receipts-head">
      <h3>${t('pager.receipts')}</h3>
      <${SummaryText} message=${message} receipts=${receipts} testid=${`pager-receipts-summary-${id}`} />
    </div>
    <${ReceiptsTable} pager=${pager} id=${id} />
  </section>`;
}

// --- conversation -----------------------------------------------------------------------------

let handledFocus = 0;

function ThreadView({ pager }: { pager: PagerModel }) {
  const thread = useStore(pager.thread);
  const receipts = useStore(pager.receipts);
  const focusTick = useStore(pager.replyFocus);
  const [body, setBody] = useState('');
  const [urgent, setUrgent] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const clientMsgId = useRef(newClientMsgId());
  const textarea = useRef<HTMLTextAreaElement>(null);
  const scroller = useRef<HTMLDivElement>(null);
  const peerId = thread?.peer.id;
  const lastId = thread?.messages[thread.messages.length - 1]?.message_id;

  // Before the browser regains control: after paint, it would wipe what was typed meanwhile.
  useLayoutEffect(() => {
    setBody('');
    setError(null);
    clientMsgId.current = newClientMsgId();
  }, [peerId]);
  useEffect(() => {
    if (focusTick > handledFocus && thread) {
      handledFocus = focusTick;
      textarea.current?.focus();
    }
  }, [focusTick, peerId]);
  // Show the page the thread was opened on, or the newest; not when older ones are paged in.
  useEffect(() => {
    const box = scroller.current;
    if (!box) return;
    const focused = thread?.focus ? box.querySelector<HTMLElement>(`[data-testid="pager-thread-msg-${thread.focus}"]`) : null;
    box.scrollTop = focused ? focused.offsetTop - box.clientHeight / 3 : box.scrollHeight;
  }, [peerId, lastId, thread?.focus]);

  if (!thread) return null;
  const { peer } = thread;
  // Reply to the page the thread was opened on, else to their latest.
  const theirs = thread.messages.filter((m) => m.from.id === peer.id);
  const replyTo = theirs.find((m) => m.message_id === thread.focus) ?? theirs[theirs.length - 1];

  const send = async () => {
    const text = body.trim();
    if (!text) return setError(new ApiError({ code: 'bad_request', message: t('pager.need_body') }));
    setBusy(true);
    setError(null);
    try {
      await pager.send(
        {
          recipients: [{ kind: 'user', id: peer.id, name: peer.name }],
          body: text,
          priority: urgent ? 'urgent' : 'normal',
          attachments: [],
          reply_to: replyTo?.message_id ?? null,
        },
        clientMsgId.current,
      );
      clientMsgId.current = newClientMsgId();
      setBody('');
      setUrgent(false);
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };

  const quoted = (id: Id | null | undefined) => (id ? thread.messages.find((m) => m.message_id === id) : undefined);
  return html`<section class="card pager-thread" data-testid="pager-thread" data-peer-id=${peer.id} aria-labelledby="pager-thread-title">
    <div class="card-header">
      <h2 id="pager-thread-title">${t('pager.conversation_with', { name: peer.name })}</h2>
      <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => pager.closeDetail()}>×</button>
    </div>
    <${ErrorNote} error=${thread.error} testid="pager-thread-error" />
    <div class="pager-thread-scroll" ref=${scroller}>
      ${thread.hasMore
        ? html`<button
            type="button"
            class="btn btn-small btn-ghost btn-block"
            data-testid="pager-thread-older"
            disabled=${thread.loading}
            onClick=${() => void pager.olderInThread()}
          >
            ${t('pager.older')}
          </button>`
        : null}
      ${thread.messages.length === 0
        ? html`<div class="empty">${thread.loading ? t('board.loading') : t('pager.thread_empty')}</div>`
        : null}
      ${thread.messages.map((m) => {
        const mine = pager.isMine(m);
        const quote = quoted(m.reply_to);
        return html`<div
          key=${m.message_id}
          class=${[
            'pager-bubble',
            mine && 'mine',
            m.priority === 'urgent' && 'urgent',
            pager.isUnread(m) && 'unread',
            thread.focus === m.message_id && 'focus',
          ]
            .filter(Boolean)
            .join(' ')}
          data-testid=${`pager-thread-msg-${m.message_id}`}
          data-state=${mine ? 'sent' : pager.isUnread(m) ? 'unread' : 'read'}
          data-via=${m.via ?? 'web'}
          onClick=${() => (mine ? void pager.select(m.message_id) : void pager.markRead([m.message_id]))}
        >
          <div class="pager-bubble-head">
            <${UrgentBadge} message=${m} />
            <${ViaSms} message=${m} />
            <time datetime=${m.sent_at} title=${formatFull(m.sent_at)}>${formatDayTime(m.sent_at)}</time>
          </div>
          ${quote ? html`<div class="pager-quote">${quote.body.slice(0, 80)}</div>` : null}
          <div class="pager-body-text">${m.body}</div>
          <${Attachments} files=${m.attachments} />
          ${mine ? html`<div class="pager-bubble-foot"><${SummaryText} message=${m} receipts=${receipts[m.message_id]} /></div>` : null}
        </div>`;
      })}
    </div>
    <form
      class="pager-reply"
      onSubmit=${(e: Event) => {
        e.preventDefault();
        void send();
      }}
    >
      <textarea
        ref=${textarea}
        rows="2"
        maxlength="5000"
        data-testid="pager-reply-body"
        placeholder=${replyTo ? t('pager.reply_placeholder', { name: peer.name }) : t('pager.body_placeholder')}
        value=${body}
        onInput=${(e: Event) => setBody((e.currentTarget as HTMLTextAreaElement).value)}
        onKeyDown=${sendOnCtrlEnter(send)}
      ></textarea>
      <div class="pager-reply-tools">
        <${UrgentToggle} urgent=${urgent} setUrgent=${setUrgent} testid="pager-reply-urgent" />
        <button
          type="submit"
          class=${`btn btn-small ${urgent ? 'btn-danger' : 'btn-primary'}`}
          data-testid="pager-reply-send"
          disabled=${busy}
        >
          ${busy ? t('pager.sending') : t('pager.reply')}
        </button>
      </div>
      <${ErrorNote} error=${error} testid="pager-reply-error" />
    </form>
  </section>`;
}

function Detail({ pager }: { pager: PagerModel }) {
  const selection = useStore(pager.selection);
  if (selection?.kind === 'thread') return html`<${ThreadView} pager=${pager} />`;
  if (selection?.kind === 'message') return html`<${SentDetail} pager=${pager} id=${selection.id} />`;
  return html`<section class="card pager-detail-empty"><div class="empty">${t('pager.pick_message')}</div></section>`;
}

// --- settings ---------------------------------------------------------------------------------

function Settings({ pager }: { pager: PagerModel }) {
  const prefs = useStore(pager.prefs);
  const loadError = useStore(pager.prefsError);
  const permission = useStore(notifyPermission);
  const sound = useStore(soundOn);
  const [form, setForm] = useState<PagerPrefs>({ sms_fallback: 'offline', quiet_hours: null });
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    if (prefs) setForm(prefs);
  }, [prefs]);

  const change = (patch: Partial<PagerPrefs>) => {
    setSaved(false);
    setForm((f) => ({ ...f, ...patch }));
  };
  const quiet = form.quiet_hours;
  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await pager.savePrefs(form);
      setSaved(true);
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  const choices: SmsFallback[] = ['offline', 'urgent', 'off'];
  return html`<section class="card pager-settings" aria-labelledby="pager-settings-title">
    <div class="card-header"><h2 id="pager-settings-title">${t('pager.settings')}</h2></div>
    <div class="pager-alerts">
      <button
        type="button"
        class=${`btn btn-small${permission === 'granted' ? ' btn-ghost' : ''}`}
        data-testid="pager-bell"
        data-permission=${permission}
        disabled=${permission === 'unsupported' || permission === 'denied'}
        onClick=${() => void requestNotify()}
      >
        🔔 ${t(`pager.notify_${permission}` as 'pager.notify_default')}
      </button>
      <label class="pager-check">
        <input type="checkbox" data-testid="pager-sound" checked=${sound} onChange=${(e: Event) => setSound(checked(e))} />
        ${t('pager.sound')}
      </label>
    </div>
    <form class="form" data-testid="pager-sms-pref" onSubmit=${save}>
      <div class="field">
        <span class="field-label">${t('pager.sms_pref')}</span>
        <div class="pager-radios" role="radiogroup">
          ${choices.map(
            (c) => html`<label key=${c} class="pager-check">
              <input
                type="radio"
                name="sms_fallback"
                value=${c}
                data-testid=${`pager-sms-${c}`}
                checked=${form.sms_fallback === c}
                onChange=${() => change({ sms_fallback: c })}
              />
              ${t(`pager.sms_${c}` as 'pager.sms_off')}
            </label>`,
          )}
        </div>
      </div>
      <div class="field">
        <label class="pager-check">
          <input
            type="checkbox"
            data-testid="pager-quiet"
            checked=${quiet !== null}
            onChange=${(e: Event) =>
              change({ quiet_hours: (e.currentTarget as HTMLInputElement).checked ? { start: '22:00', end: '07:00' } : null })}
          />
          ${t('pager.quiet_hours')}
        </label>
        ${quiet
          ? html`<div class="pager-quiet-times">
              <input
                type="time"
                data-testid="pager-quiet-start"
                value=${quiet.start}
                onInput=${(e: Event) => change({ quiet_hours: { ...quiet, start: input(e) } })}
              />
              <span>—</span>
              <input
                type="time"
                data-testid="pager-quiet-end"
                value=${quiet.end}
                onInput=${(e: Event) => change({ quiet_hours: { ...quiet, end: input(e) } })}
              />
            </div>`
          : null}
      </div>
      <${ErrorNote} error=${error ?? (prefs ? null : loadError)} testid="pager-prefs-error" />
      ${saved ? html`<div class="ok-note" role="status" data-testid="pager-prefs-saved">${t('pager.prefs_saved')}</div>` : null}
      <button type="submit" class="btn btn-small" data-testid="pager-prefs-save" disabled=${busy}>${t('pager.save')}</button>
    </form>
  </section>`;
}

// --- the panel and the pop-ups ----------------------------------------------------------------

export function PagerPanel({ ctx }: { ctx: AppContext }) {
  const { pager } = ctx;
  useEffect(() => {
    void pager.loadDepartments();
    if (!pager.prefs.get()) void pager.loadPrefs();
  }, [pager]);
  return html`<div class="pager-layout">
    <div class="pager-side">
      <${Lists} pager=${pager} />
      <${Settings} pager=${pager} />
    </div>
    <div class="pager-main">
      <${Compose} pager=${pager} />
      <${Detail} pager=${pager} />
    </div>
  </div>`;
}

/** Pages as they arrive, shown over whatever panel is open. */
export function PagerPopups({ ctx }: { ctx: AppContext }) {
  const { pager } = ctx;
  const popups = useStore(pager.popups);
  if (popups.length === 0) return null;
  const open = (id: Id, reply: boolean) => {
    pager.dismissPopup(id);
    location.hash = '#pager';
    if (reply) pager.reply(id);
    else void pager.select(id);
  };
  return html`<div class="pager-popups" role="alert" aria-live="assertive">
    ${popups.map(
      (m) => html`<${PopupCard}
        key=${m.message_id}
        testid="pager-popup"
        attrs=${{ 'data-message-id': m.message_id, 'data-priority': m.priority }}
        urgent=${m.priority === 'urgent'}
        icon=${m.priority === 'urgent' ? '🚨' : '📟'}
        title=${m.from.name}
        badges=${html`<${UrgentBadge} message=${m} /><${ViaSms} message=${m} />`}
        body=${m.body}
        extra=${m.attachments?.length ? html`<div class="muted small">📎 ${t('pager.n_files', { n: m.attachments.length })}</div>` : null}
        onOpen=${() => open(m.message_id, false)}
        onClose=${() => pager.dismissPopup(m.message_id)}
        actions=${html`<button type="button" class="btn btn-small" data-testid="pager-popup-read" onClick=${() => void pager.markRead([m.message_id])}>
            ${t('pager.mark_read')}
          </button>
          <button type="button" class="btn btn-small btn-primary" data-testid="pager-popup-reply" onClick=${() => open(m.message_id, true)}>
            ${t('pager.reply')}
          </button>`}
      />`,
    )}
  </div>`;
}
