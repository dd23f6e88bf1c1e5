// The documents panel (公文): my documents / sent to me / waiting on me, the issue form (发文:
// title, files, recipients, signer), the registration form for an incoming one (收文登记, for
// document officers), and a document's page: its number, a stage line (审批 → 编号 → 分发 →
// 归档, or 登记 → 批示 → 办理 → 办结) kept live, the approval's steps and trail, receipts of its
// circulation, its archive code, its handling tasks, its files and what arrived while it was open.
import { useEffect, useState } from 'preact/hooks';
import { departmentTree } from './board';
import { ErrorNote, Icon } from './components';
import { AttachButton, FileLinks, RecipientPicker, UploadList, newClientMsgId, recipientIds, uploadProblem, useUploads, type Recipient } from './compose';
import type { AppContext } from './context';
import { DOC_BOXES, type Approval, type DocBox, type DocDetail, type DocRow, type DocState, type DocumentsModel, type LiveLine } from './documents';
import { ApiError } from './http';
import { html } from './html';
import { formatAgo, formatDayTime, formatFull, hasKey, t, type MessageKey } from './i18n';
import { PersonPicker } from './picker';
import { useStore } from './store';
import { toast } from './toast';
import type { Id } from './types';
import { actionLabel, personLabel } from './workflowView';

const inputValue = (e: Event) => (e.currentTarget as HTMLInputElement).value;
const label = (key: string, fallback: string) => (hasKey(key) ? t(key) : fallback);

export function docStateLabel(state: DocState | string): string {
  return label(`doc.state.${state}`, state);
}

function DocStateBadge({ state, testid }: { state: DocState; testid?: string }) {
  return html`<span class=${`wf-badge doc-state-${state}`} data-testid=${testid} data-state=${state}>${docStateLabel(state)}</span>`;
}

function Time({ iso, ago }: { iso: string | null | undefined; ago?: boolean }) {
  if (!iso) return null;
  return html`<time datetime=${iso} title=${formatFull(iso)}>${ago ? formatAgo(iso) : formatDayTime(iso)}</time>`;
}

// --- lists -------------------------------------------------------------------------------------

function Lists({ ctx }: { ctx: AppContext }) {
  const docs = ctx.documents;
  const tab = useStore(docs.tab);
  const list = useStore(docs.lists[tab]);
  const todo = useStore(docs.lists.todo);
  const view = useStore(docs.view);
  const activeId = view?.kind === 'doc' ? view.id : null;
  const tabLabel: Record<DocBox, MessageKey> = { mine: 'doc.box.mine', incoming: 'doc.box.incoming', todo: 'doc.box.todo' };
  const empty: Record<DocBox, MessageKey> = { mine: 'doc.empty.mine', incoming: 'doc.empty.incoming', todo: 'doc.empty.todo' };
  return html`<section class="card pager-lists doc-lists" aria-labelledby="doc-list-title">
    <div class="card-header">
      <h2 id="doc-list-title">${t('doc.title')}</h2>
      <div class="doc-new-buttons">
        <button type="button" class=${`btn btn-small${view?.kind === 'issue' ? '' : ' btn-primary'}`} data-testid="doc-new" onClick=${() => docs.startIssue()}>
          ＋ ${t('doc.new_issue')}
        </button>
        ${docs.isOfficer
          ? html`<button type="button" class="btn btn-small" data-testid="doc-receive-new" onClick=${() => docs.startReceive()}>⇲ ${t('doc.new_receive')}</button>`
          : null}
      </div>
    </div>
    <div class="pager-tabs" role="tablist">
      ${DOC_BOXES.map(
        (box) => html`<button
          key=${box}
          type="button"
          role="tab"
          aria-selected=${tab === box}
          class=${`pager-tab${tab === box ? ' active' : ''}`}
          data-testid=${`doc-tab-${box}`}
          onClick=${() => {
            docs.tab.set(box);
            void docs.loadList(box);
          }}
        >
          ${t(tabLabel[box])}
          ${box === 'todo' && todo.items.length > 0 ? html` <span class="count-badge" data-testid="doc-todo-count" data-count=${todo.items.length}>${todo.items.length}</span>` : null}
        </button>`,
      )}
    </div>
    <${ErrorNote} error=${list.error} testid="doc-list-error" />
    <ul class="pager-list" data-testid=${`doc-list-${tab}`}>
      ${list.items.map((item) => html`<${ItemRow} key=${item.document_id} docs=${docs} item=${item} box=${tab} active=${item.document_id === activeId} />`)}
    </ul>
    ${list.items.length === 0 && !list.error ? html`<div class="empty">${list.loading ? t('board.loading') : t(empty[tab])}</div>` : null}
  </section>`;
}

function ItemRow({ docs, item, box, active }: { docs: DocumentsModel; item: DocRow; box: DocBox; active: boolean }) {
  const select = () => docs.select(item.document_id, box);
  return html`<li
    class=${['pager-item', 'doc-item', active && 'active'].filter(Boolean).join(' ')}
    data-testid=${`doc-item-${item.document_id}`}
    data-state=${item.state}
    data-number=${item.number ?? ''}
    tabindex="0"
    onClick=${select}
    onKeyDown=${(e: KeyboardEvent) => e.key === 'Enter' && select()}
  >
    <div class="pager-item-head">
      <span class="pager-item-who">${item.title}</span>
      <time class="pager-time" datetime=${item.updated_at} title=${formatFull(item.updated_at)}>${formatAgo(item.updated_at)}</time>
    </div>
    <div class="pager-item-foot">
      <span class="wf-def-tag">${item.kind === 'issue' ? t('doc.kind.issue') : t('doc.kind.receive')}</span>
      ${item.number ? html`<span class="doc-number-tag">${item.number}</span>` : null}
      ${item.kind === 'receive' && item.from_org ? html`<span class="muted small">${item.from_org}</span>` : null}
      ${box !== 'mine' && item.kind === 'issue' ? html`<span class="muted small">${item.drafter.name}</span>` : null}
      <${DocStateBadge} state=${item.state} />
    </div>
  </li>`;
}

// --- forms -------------------------------------------------------------------------------------

const ISSUE_ROUTE: MessageKey[] = ['doc.route.review', 'doc.route.office', 'doc.route.sign'];

function IssueForm({ ctx }: { ctx: AppContext }) {
  const docs = ctx.documents;
  const prefix = useStore(docs.prefix);
  const uploads = useUploads();
  const [title, setTitle] = useState('');
  const [to, setTo] = useState<Recipient[]>([]);
  const [signer, setSigner] = useState<Recipient[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [clientMsgId] = useState(newClientMsgId);
  useEffect(() => void ctx.pager.loadDepartments(), [ctx]);
  const submit = async (e: Event) => {
    e.preventDefault();
    const problem = !title.trim()
      ? t('doc.form.no_title')
      : uploads.files.length === 0 && !uploads.uploading
        ? t('doc.form.no_files')
        : to.length === 0
          ? t('doc.form.no_recipients')
          : uploadProblem(uploads);
    if (problem) {
      setError(new ApiError({ code: 'bad_request', message: problem }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await docs.issue(
        { title: title.trim(), file_ids: uploads.files.map((f) => f.file_id), ...recipientIds(to), signer: signer[0]?.id ?? null },
        clientMsgId,
      );
      toast(t('doc.issued'), 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card doc-form" data-testid="doc-form" onSubmit=${submit}>
    <div class="card-header">
      <h2>${t('doc.new_issue')}</h2>
      <button type="button" class="btn btn-small btn-ghost" onClick=${() => docs.close()}>${t('common.cancel')}</button>
    </div>
    <ol class="doc-route" data-testid="doc-route">
      ${ISSUE_ROUTE.map((k, i) => html`<li key=${k}><span class="doc-route-n">${i + 1}</span>${t(k)}</li>`)}
      <li><span class="doc-route-n">✓</span>${t('doc.route.after')}</li>
    </ol>
    <label class="field">
      <span class="field-label">${t('doc.form.title')}<span class="wf-required" aria-hidden="true"> *</span></span>
      <input type="text" maxlength="200" value=${title} data-testid="doc-title" placeholder=${t('doc.form.title_placeholder')} onInput=${(e: Event) => setTitle(inputValue(e))} />
    </label>
    <div class="field">
      <span class="field-label">${t('doc.form.files')}<span class="wf-required" aria-hidden="true"> *</span></span>
      <${UploadList} uploads=${uploads} prefix="doc" />
      <div><${AttachButton} uploads=${uploads} prefix="doc" /></div>
    </div>
    <${RecipientPicker} source=${ctx.pager} prefix="doc" label=${t('doc.form.to')} chosen=${to} onChange=${setTo} />
    <${PersonPicker} people=${ctx.pager} memory=${ctx.workflow} prefix="doc-signer" label=${t('doc.form.signer')} chosen=${signer} onChange=${setSigner} />
    <p class="muted small doc-hint">
      ${t('doc.form.signer_hint')}
      ${prefix ? html`<br />${t('doc.form.number_hint', { example: `${prefix}〔${new Date().getFullYear()}〕N号` })}` : null}
    </p>
    <${ErrorNote} error=${error} testid="doc-form-error" />
    <div class="task-buttons">
      <button type="submit" class="btn btn-primary" disabled=${busy || uploads.uploading} data-testid="doc-submit">${t('doc.form.submit')}</button>
    </div>
  </form>`;
}

function DepartmentChips(props: { ctx: AppContext; prefix: string; label: string; chosen: Id[]; onChange: (ids: Id[]) => void }) {
  const departments = useStore(props.ctx.pager.departments);
  const name = (id: Id) => departments.find((d) => d.id === id)?.name ?? id;
  return html`<div class="field">
    <span class="field-label">${props.label}</span>
    <div class="doc-chips">
      ${props.chosen.map(
        (id) => html`<span key=${id} class="pager-chip dept" data-testid=${`${props.prefix}-chip-${id}`}>
          <${Icon} name="dept" /> ${name(id)}
          <button type="button" class="pager-chip-x" title=${t('pager.remove')} onClick=${() => props.onChange(props.chosen.filter((x) => x !== id))}>×</button>
        </span>`,
      )}
      <select
        data-testid=${`${props.prefix}-select`}
        value=""
        onChange=${(e: Event) => {
          const el = e.currentTarget as HTMLSelectElement;
          if (el.value && !props.chosen.includes(el.value)) props.onChange([...props.chosen, el.value]);
          el.value = '';
        }}
      >
        <option value="">${t('pager.add_department')}</option>
        ${departmentTree(departments).map((o) => html`<option key=${o.id} value=${o.id} disabled=${props.chosen.includes(o.id)}>${'\u3000'.repeat(o.depth)}${o.label}</option>`)}
      </select>
    </div>
  </div>`;
}

function ReceiveForm({ ctx }: { ctx: AppContext }) {
  const docs = ctx.documents;
  const uploads = useUploads();
  const [title, setTitle] = useState('');
  const [from, setFrom] = useState('');
  const [depts, setDepts] = useState<Id[]>([]);
  const [leader, setLeader] = useState<Recipient[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [clientMsgId] = useState(newClientMsgId);
  useEffect(() => void ctx.pager.loadDepartments(), [ctx]);
  const submit = async (e: Event) => {
    e.preventDefault();
    const problem = !title.trim()
      ? t('doc.form.no_title')
      : !from.trim()
        ? t('doc.form.no_from')
        : uploads.files.length === 0 && !uploads.uploading
          ? t('doc.form.no_files')
          : uploadProblem(uploads);
    if (problem) {
      setError(new ApiError({ code: 'bad_request', message: problem }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await docs.receive(
        { title: title.trim(), from_org: from.trim(), file_ids: uploads.files.map((f) => f.file_id), departments: depts, leader: leader[0]?.id ?? null },
        clientMsgId,
      );
      toast(t('doc.registered'), 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card doc-form" data-testid="doc-recv-form" onSubmit=${submit}>
    <div class="card-header">
      <h2>${t('doc.new_receive')}</h2>
      <button type="button" class="btn btn-small btn-ghost" onClick=${() => docs.close()}>${t('common.cancel')}</button>
    </div>
    <ol class="doc-route">
      <li><span class="doc-route-n">1</span>${t('doc.route.register')}</li>
      <li><span class="doc-route-n">2</span>${t('doc.route.instruct')}</li>
      <li><span class="doc-route-n">3</span>${t('doc.route.handle')}</li>
    </ol>
    <div class="doc-form-row">
      <label class="field">
        <span class="field-label">${t('doc.form.recv_title')}<span class="wf-required" aria-hidden="true"> *</span></span>
        <input type="text" maxlength="200" value=${title} data-testid="doc-recv-title" onInput=${(e: Event) => setTitle(inputValue(e))} />
      </label>
      <label class="field">
        <span class="field-label">${t('doc.form.from_org')}<span class="wf-required" aria-hidden="true"> *</span></span>
        <input type="text" maxlength="200" value=${from} data-testid="doc-recv-from" placeholder=${t('doc.form.from_placeholder')} onInput=${(e: Event) => setFrom(inputValue(e))} />
      </label>
    </div>
    <div class="field">
      <span class="field-label">${t('doc.form.recv_files')}<span class="wf-required" aria-hidden="true"> *</span></span>
      <${UploadList} uploads=${uploads} prefix="doc-recv" />
      <div><${AttachButton} uploads=${uploads} prefix="doc-recv" /></div>
    </div>
    <${DepartmentChips} ctx=${ctx} prefix="doc-recv-dept" label=${t('doc.form.handling')} chosen=${depts} onChange=${setDepts} />
    <${PersonPicker} people=${ctx.pager} memory=${ctx.workflow} prefix="doc-recv-leader" label=${t('doc.form.leader')} chosen=${leader} onChange=${setLeader} />
    <p class="muted small doc-hint">${t('doc.form.recv_hint')}</p>
    <${ErrorNote} error=${error} testid="doc-recv-error" />
    <div class="task-buttons">
      <button type="submit" class="btn btn-primary" disabled=${busy || uploads.uploading} data-testid="doc-recv-submit">${t('doc.form.register')}</button>
    </div>
  </form>`;
}

// --- a document's page -------------------------------------------------------------------------

type StageStatus = 'done' | 'current' | 'pending' | 'stopped';

function stages(doc: DocDetail): { key: string; label: string; status: StageStatus; at: string | null; detail: string }[] {
  const stopped = doc.state === 'rejected' || doc.state === 'withdrawn';
  if (doc.kind === 'issue') {
    const order: DocState[] = ['approving', 'numbered', 'circulated', 'filed'];
    const reached = order.indexOf(doc.state);
    const status = (i: number): StageStatus => (stopped ? (i === 0 ? 'stopped' : 'pending') : i <= reached ? (i === order.length - 1 || i < reached ? 'done' : 'current') : 'pending');
    const receipts = doc.receipts;
    return [
      { key: 'approval', label: t('doc.stage.approval'), status: stopped ? 'stopped' : reached > 0 ? 'done' : 'current', at: doc.numbered_at, detail: stopped ? docStateLabel(doc.state) : '' },
      { key: 'numbered', label: t('doc.stage.numbered'), status: reached >= 1 ? 'done' : status(1), at: doc.numbered_at, detail: doc.number ?? '' },
      {
        key: 'circulated',
        label: t('doc.stage.circulated'),
        status: reached >= 2 ? 'done' : status(2),
        at: doc.circulated_at,
        detail: receipts ? t('doc.receipts_short', { confirmed: receipts.confirmed, total: receipts.unopened + receipts.opened + receipts.confirmed }) : '',
      },
      { key: 'filed', label: t('doc.stage.filed'), status: reached >= 3 ? 'done' : status(3), at: doc.filed_at, detail: doc.archive_code ?? '' },
    ];
  }
  const order: DocState[] = ['approving', 'handling', 'handled'];
  const reached = order.indexOf(doc.state);
  return [
    { key: 'registered', label: t('doc.stage.registered'), status: 'done', at: doc.created_at, detail: doc.from_org ?? '' },
    { key: 'approval', label: t('doc.stage.instruction'), status: stopped ? 'stopped' : reached > 0 ? 'done' : 'current', at: null, detail: stopped ? docStateLabel(doc.state) : '' },
    { key: 'handling', label: t('doc.stage.handling'), status: reached > 1 ? 'done' : reached === 1 ? 'current' : 'pending', at: null, detail: doc.handling.length ? t('doc.handling_n', { n: doc.handling.length }) : '' },
    { key: 'handled', label: t('doc.stage.handled'), status: reached === 2 ? 'done' : 'pending', at: doc.handled_at, detail: '' },
  ];
}

function Stages({ doc }: { doc: DocDetail }) {
  return html`<ol class="doc-stages" data-testid="doc-stages">
    ${stages(doc).map(
      (s) => html`<li key=${s.key} class=${`doc-stage doc-stage-${s.status}`} data-testid=${`doc-stage-${s.key}`} data-status=${s.status}>
        <span class="doc-stage-dot" aria-hidden="true">${s.status === 'done' ? '✓' : s.status === 'stopped' ? '✕' : ''}</span>
        <span class="doc-stage-label">${s.label}</span>
        ${s.detail ? html`<span class="doc-stage-detail">${s.detail}</span>` : null}
        ${s.at && s.status === 'done' ? html`<span class="muted small"><${Time} iso=${s.at} /></span>` : null}
      </li>`,
    )}
  </ol>`;
}

function ApprovalView({ ctx, doc, appr }: { ctx: AppContext; doc: DocDetail; appr: Approval }) {
  const steps = appr.steps.length ? appr.steps : [...new Set(appr.tasks.map((x) => x.step))];
  const finished = appr.state !== 'running' && appr.state !== 'returned';
  return html`<div class="doc-approval" data-testid="doc-approval" data-state=${appr.state}>
    <div class="doc-section-head">
      <h3>${t('doc.approval')}</h3>
      <button type="button" class="btn btn-small btn-ghost" data-testid="doc-open-approval" onClick=${() => {
        location.hash = '#workflow';
        ctx.workflow.select(doc.instance_id);
      }}>${t('doc.open_approval')} →</button>
    </div>
    <ol class="doc-steps">
      ${steps.map((step, i) => {
        const tasks = appr.tasks.filter((x) => x.step === step);
        const open = tasks.some((x) => x.state === 'open');
        const done = tasks.length > 0 && !open && tasks.some((x) => x.state === 'approved');
        const skipped = appr.trail.some((e) => e.step === step && e.action === 'skip');
        const status = open && !finished ? 'current' : done || skipped ? 'done' : tasks.some((x) => x.state === 'rejected') ? 'stopped' : 'pending';
        return html`<li key=${step} class=${`doc-step doc-step-${status}`} data-testid=${`doc-step-${i}`} data-status=${status}>
          <strong>${step}</strong>
          <span class="doc-step-people">
            ${tasks.map(
              (x) => html`<span key=${x.task_id} class=${`doc-step-person doc-task-${x.state}`}>
                ${personLabel(x.assignee, x.on_behalf_of)}
                ${x.state !== 'open' ? html` · ${label(`wf.task.${x.state}`, x.state)}` : html` · ${t('doc.waiting')}`}
                ${x.comment ? html`<span class="muted">「${x.comment}」</span>` : null}
              </span>`,
            )}
            ${tasks.length === 0 && skipped ? html`<span class="muted small">${t('wf.action.skip')}</span>` : null}
          </span>
        </li>`;
      })}
    </ol>
  </div>`;
}

function liveText(line: LiveLine): string {
  const x = line.text;
  switch (line.type) {
    case 'workflow.progress':
      return t('doc.live.progress', { actor: x.actor || '', action: actionLabel(x.action), step: x.step }) + (x.comment ? `「${x.comment}」` : '');
    case 'document.numbered':
      return t('doc.live.numbered', { number: x.number ?? '' });
    case 'document.circulated':
      return t('doc.live.circulated', { n: x.recipients_count ?? '0' });
    case 'document.filed':
      return t('doc.live.filed', { code: x.code ?? '' });
    default:
      return t('doc.live.state', { state: docStateLabel(x.state ?? '') });
  }
}

function Receipts({ ctx, doc }: { ctx: AppContext; doc: DocDetail }) {
  if (!doc.circulation_id) return null;
  const r = doc.receipts ?? { unopened: 0, opened: 0, confirmed: 0 };
  const mine = doc.drafter.id === ctx.me.id;
  return html`<div class="doc-receipts" data-testid="doc-receipts" data-unopened=${r.unopened} data-opened=${r.opened} data-confirmed=${r.confirmed}>
    <span><${Icon} name="mail" /> ${t('doc.circulation')}</span>
    <span class="circ-count">${t('circ.state.unopened')} <strong>${r.unopened}</strong></span>
    <span class="circ-count">${t('circ.state.opened')} <strong>${r.opened}</strong></span>
    <span class="circ-count">${t('circ.state.confirmed')} <strong>${r.confirmed}</strong></span>
    <button type="button" class="btn btn-small btn-ghost" data-testid="doc-open-circulation" onClick=${() => {
      location.hash = '#circulation';
      ctx.circulation.select(mine ? 'sent' : 'inbox', doc.circulation_id as Id);
    }}>${mine ? t('doc.open_receipts') : t('doc.open_circulation')} →</button>
  </div>`;
}

function Detail({ ctx, id }: { ctx: AppContext; id: Id }) {
  const opened = useStore(ctx.documents.opened);
  useStore(ctx.workflow.names);
  if (!opened || opened.id !== id) return null;
  const { doc, approval: appr, live } = opened;
  if (!doc) {
    return html`<section class="card" data-testid=${`doc-detail-${id}`}>
      ${opened.error ? html`<${ErrorNote} error=${opened.error} testid="doc-detail-error" />` : html`<div class="empty">${t('board.loading')}</div>`}
    </section>`;
  }
  return html`<section class="card doc-detail" data-testid=${`doc-detail-${id}`} data-state=${doc.state} aria-labelledby="doc-detail-title">
    <div class="doc-head">
      <div>
        <div class="doc-number" data-testid="doc-number" data-number=${doc.number ?? ''}>
          ${doc.number ?? (doc.kind === 'issue' ? t('doc.no_number') : t('doc.kind.receive'))}
        </div>
        <h2 id="doc-detail-title" class="doc-title">${doc.title}</h2>
        <div class="muted small">
          ${`${doc.kind === 'issue' ? t('doc.drafted_by', { name: doc.drafter.name }) : t('doc.registered_by', { name: doc.drafter.name, from: doc.from_org ?? '' })} · `}<${Time} iso=${doc.created_at} />
        </div>
      </div>
      <${DocStateBadge} state=${doc.state} testid="doc-state" />
    </div>
    <${Stages} doc=${doc} />
    ${doc.archive_code
      ? html`<div class="doc-archive" data-testid="doc-archive-code"><${Icon} name="archive" /> ${t('doc.archive_code')}<code>${doc.archive_code}</code>
          <button type="button" class="btn btn-small btn-ghost" onClick=${() => {
            location.hash = '#archive';
            ctx.archive.open(doc.archive_id as Id);
          }}>${t('doc.open_archive')} →</button>
        </div>`
      : null}
    <${Receipts} ctx=${ctx} doc=${doc} />
    ${doc.instruction ? html`<div class="doc-instruction" data-testid="doc-instruction"><span class="field-label">${t('doc.instruction')}</span><p>${doc.instruction}</p></div>` : null}
    ${doc.handling.length
      ? html`<table class="doc-table" data-testid="doc-handling">
          <thead><tr><th>${t('doc.handling_dept')}</th><th>${t('task.col.person')}</th><th>${t('task.col.state')}</th><th>${t('task.col.note')}</th></tr></thead>
          <tbody>
            ${doc.handling.flatMap((h) =>
              (h.assignees.length ? h.assignees : [null]).map(
                (a, i) => html`<tr key=${`${h.department_id}-${a?.user_id ?? i}`} data-testid=${`doc-handling-${h.department_id}`} data-done=${h.done ? 'true' : 'false'}>
                  <td>${i === 0 ? html`<${Icon} name="dept" /> ${h.department}` : ''}</td>
                  <td>${a?.name ?? ''}</td>
                  <td>${a ? html`<span class=${`task-state task-state-${a.state}`}>${label(`task.state.${a.state}`, a.state)}</span> ${a.percent}%` : ''}</td>
                  <td class="task-note-cell">${a?.note ?? ''}</td>
                </tr>`,
              ),
            )}
          </tbody>
        </table>`
      : null}
    <div class="doc-files" data-testid="doc-files">
      <span class="field-label">${t('doc.files')}</span>
      <${FileLinks} files=${doc.files} prefix="doc" />
    </div>
    ${appr ? html`<${ApprovalView} ctx=${ctx} doc=${doc} appr=${appr} />` : null}
    ${live.length
      ? html`<div class="doc-live" data-testid="doc-live" aria-live="polite">
          <h3>${t('doc.live')}</h3>
          <ul>
            ${[...live].reverse().map((l) => html`<li key=${l.key} data-type=${l.type}><time class="muted small" datetime=${l.at}>${formatDayTime(l.at)}</time> ${liveText(l)}</li>`)}
          </ul>
        </div>`
      : null}
    <${ErrorNote} error=${opened.error} testid="doc-detail-error" />
  </section>`;
}

function Welcome({ ctx }: { ctx: AppContext }) {
  const docs = ctx.documents;
  return html`<section class="card wf-welcome doc-welcome">
    <div class="empty">${t('doc.welcome')}</div>
    <div class="wf-def-picker wf-welcome-defs">
      <button type="button" class="wf-def-tile" data-testid="doc-quick-issue" onClick=${() => docs.startIssue()}>
        <strong>${t('doc.new_issue')}</strong>
        <span class="muted small">${ISSUE_ROUTE.map((k) => t(k)).join(' → ')} → ${t('doc.route.after')}</span>
      </button>
      ${docs.isOfficer
        ? html`<button type="button" class="wf-def-tile" data-testid="doc-quick-receive" onClick=${() => docs.startReceive()}>
            <strong>${t('doc.new_receive')}</strong>
            <span class="muted small">${t('doc.route.register')} → ${t('doc.route.instruct')} → ${t('doc.route.handle')}</span>
          </button>`
        : null}
    </div>
  </section>`;
}

function Main({ ctx }: { ctx: AppContext }) {
  const view = useStore(ctx.documents.view);
  if (view?.kind === 'issue') return html`<${IssueForm} ctx=${ctx} />`;
  if (view?.kind === 'receive') return html`<${ReceiveForm} ctx=${ctx} />`;
  if (view?.kind === 'doc') return html`<${Detail} key=${view.id} ctx=${ctx} id=${view.id} />`;
  return html`<${Welcome} ctx=${ctx} />`;
}

export function DocumentsPanel({ ctx }: { ctx: AppContext }) {
  useEffect(() => {
    void ctx.pager.loadDepartments();
    void ctx.documents.loadList(ctx.documents.tab.get());
  }, [ctx]);
  return html`<div class="pager-layout doc-layout" data-testid="doc-panel">
    <div class="pager-side"><${Lists} ctx=${ctx} /></div>
    <div class="pager-main"><${Main} ctx=${ctx} /></div>
  </div>`;
}
