// The archive panel (档案): the catalogue with search, my loans (state and end), a record's page
// (code, retention, files with their SHA-256, loans) or, when I may not open it, its catalogue
// entry and the borrowing form; for archivists the filing form and the destruction request.
import { useEffect, useState } from 'preact/hooks';
import { ErrorNote, Icon } from './components';
import { AttachButton, FileLinks, UploadList, uploadProblem, useUploads } from './compose';
import type { AppContext } from './context';
import { ApiError } from './http';
import { html } from './html';
import { formatDayTime, formatFull, hasKey, lang, t } from './i18n';
import { RETENTIONS, type ArcRecord, type ArchiveModel, type Loan, type Retention } from './archive';
import { useStore } from './store';
import { toast } from './toast';
import type { Id } from './types';

const inputValue = (e: Event) => (e.currentTarget as HTMLInputElement).value;
const label = (key: string, fallback: string) => (hasKey(key) ? t(key) : fallback);

export function retentionLabel(r: Retention | string): string {
  return label(`arc.retention.${r}`, r);
}

/** The day a retention period ends (a local date; the time of day means nothing here). */
function formatDate(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleDateString(lang.get() === 'zh' ? 'zh-CN' : 'en-GB', { year: 'numeric', month: 'long', day: 'numeric' });
}

function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return null;
  return html`<time datetime=${iso} title=${formatFull(iso)}>${formatDayTime(iso)}</time>`;
}

function LoanBadge({ loan }: { loan: Loan }) {
  return html`<span class=${`wf-badge arc-loan-${loan.state}`} data-state=${loan.state}>${label(`arc.loan.${loan.state}`, loan.state)}</span>`;
}

/** "借阅中，至 5月6日 09:30" / "已到期" */
function loanLine(loan: Loan): string {
  if (loan.state === 'active' && loan.ends_at) return t('arc.loan_until', { time: formatDayTime(loan.ends_at) });
  if (loan.state === 'pending') return t('arc.loan_pending', { n: loan.days });
  if (loan.state === 'ended' && loan.ends_at) return t('arc.loan_ended_at', { time: formatDayTime(loan.ends_at) });
  return '';
}

// --- the side: catalogue and loans ---------------------------------------------------------------

function CatalogueCard({ ctx }: { ctx: AppContext }) {
  const arc = ctx.archive;
  const cat = useStore(arc.catalogue);
  const view = useStore(arc.view);
  const [query, setQuery] = useState(cat.query);
  const activeId = view?.kind === 'record' ? view.id : null;
  return html`<section class="card pager-lists arc-catalogue" aria-labelledby="arc-title">
    <div class="card-header">
      <h2 id="arc-title">${t('arc.title')}</h2>
      ${arc.isArchivist
        ? html`<button type="button" class=${`btn btn-small${view?.kind === 'file' ? '' : ' btn-primary'}`} data-testid="arc-new" onClick=${() => arc.showFiling()}>＋ ${t('arc.file_new')}</button>`
        : null}
    </div>
    <form
      class="lib-search-form"
      role="search"
      onSubmit=${(e: Event) => {
        e.preventDefault();
        void arc.search(query);
      }}
    >
      <input type="search" placeholder=${t('arc.search_placeholder')} value=${query} data-testid="arc-search-input" onInput=${(e: Event) => setQuery(inputValue(e))} />
      <button type="submit" class="btn btn-small btn-primary" data-testid="arc-search-submit">${t('lib.search_go')}</button>
    </form>
    <${ErrorNote} error=${cat.error} testid="arc-search-error" />
    <div class="muted small arc-hits-head" data-testid="arc-hit-count" data-count=${cat.hits.length}>
      ${cat.loading ? t('lib.searching') : cat.query ? t('arc.hits', { n: cat.hits.length, q: cat.query }) : t('arc.recent')}
    </div>
    <ul class="pager-list" data-testid="arc-hits">
      ${cat.hits.map(
        (h) => html`<li
          key=${h.archive_id}
          class=${['pager-item', 'arc-item', h.archive_id === activeId && 'active', h.state === 'destroyed' && 'arc-destroyed'].filter(Boolean).join(' ')}
          data-testid=${`arc-hit-${h.archive_id}`}
          data-state=${h.state}
          data-may-open=${h.may_open ? 'true' : 'false'}
          tabindex="0"
          onClick=${() => arc.open(h.archive_id)}
          onKeyDown=${(e: KeyboardEvent) => e.key === 'Enter' && arc.open(h.archive_id)}
        >
          <div class="pager-item-head">
            <span class="pager-item-who">${h.title}</span>
            ${h.may_open ? html`<span class="arc-open-mark" title=${t('arc.may_open')}><${Icon} name="unlock" /></span>` : html`<span class="arc-open-mark muted" title=${t('arc.may_not_open')}><${Icon} name="lock" /></span>`}
          </div>
          <div class="pager-item-foot">
            <code class="arc-code">${h.code}</code>
            <span class="wf-def-tag">${retentionLabel(h.retention)}</span>
            ${h.state === 'destroyed' ? html`<span class="wf-badge wf-state-rejected">${t('arc.destroyed')}</span>` : null}
          </div>
        </li>`,
      )}
    </ul>
    ${cat.hits.length === 0 && !cat.loading && !cat.error ? html`<div class="empty" data-testid="arc-no-hits">${cat.query ? t('arc.no_hits') : t('arc.empty')}</div>` : null}
  </section>`;
}

function LoansCard({ ctx }: { ctx: AppContext }) {
  const arc = ctx.archive;
  const { loans, all, error } = useStore(arc.loans);
  return html`<section class="card arc-loans" aria-labelledby="arc-loans-title">
    <div class="card-header">
      <h2 id="arc-loans-title">${all ? t('arc.loans_all') : t('arc.loans_mine')}</h2>
      ${arc.isArchivist
        ? html`<button type="button" class="btn btn-small btn-ghost" data-testid="arc-loans-all" onClick=${() => void arc.loadLoans(!all)}>${all ? t('arc.loans_show_mine') : t('arc.loans_show_all')}</button>`
        : null}
    </div>
    <${ErrorNote} error=${error} testid="arc-loans-error" />
    <ul class="arc-loan-list" data-testid="arc-loans">
      ${loans.map((l) => {
        const rec = arc.summary(l.archive_id);
        return html`<li key=${l.loan_id} class="arc-loan" data-testid=${`arc-loan-${l.loan_id}`} data-state=${l.state} data-archive-id=${l.archive_id} data-ends-at=${l.ends_at ?? ''}>
          <button type="button" class="lib-open" onClick=${() => arc.open(l.archive_id)}>${rec ? rec.title : t('arc.record_n', { id: l.archive_id })}</button>
          <div class="arc-loan-foot">
            <${LoanBadge} loan=${l} />
            <span class="muted small" data-testid=${`arc-loan-ends-${l.loan_id}`}>${loanLine(l)}</span>
            ${all ? html`<span class="muted small">${l.borrower.name}</span>` : null}
          </div>
        </li>`;
      })}
    </ul>
    ${loans.length === 0 && !error ? html`<div class="empty small">${t('arc.no_loans')}</div>` : null}
  </section>`;
}

// --- a record ------------------------------------------------------------------------------------

function BorrowForm({ ctx, rec }: { ctx: AppContext; rec: ArcRecord }) {
  const arc = ctx.archive;
  const { loans } = useStore(arc.loans);
  const [reason, setReason] = useState('');
  const [days, setDays] = useState('7');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const open = loans.find((l) => l.archive_id === rec.archive_id && (l.state === 'pending' || l.state === 'active'));
  if (rec.state !== 'kept') return null;
  if (open) {
    return html`<div class="arc-borrow arc-borrow-open" data-testid="arc-my-loan" data-state=${open.state}>
      <${LoanBadge} loan=${open} /> <span>${loanLine(open)}</span>
      ${open.state === 'pending'
        ? html`<button type="button" class="btn btn-small btn-ghost" onClick=${() => {
            location.hash = '#workflow';
            ctx.workflow.select(open.instance_id);
          }}>${t('doc.open_approval')} →</button>`
        : null}
    </div>`;
  }
  const submit = async (e: Event) => {
    e.preventDefault();
    const n = Number(days);
    if (!reason.trim() || !(n > 0 && n <= 365)) {
      setError(new ApiError({ code: 'bad_request', message: t('arc.borrow_missing') }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await arc.borrow(rec.archive_id, reason.trim(), n);
      toast(t('arc.borrow_sent'), 'success');
      setReason('');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="arc-borrow" data-testid="arc-borrow" onSubmit=${submit}>
    <h3>${t('arc.borrow')}</h3>
    <div class="doc-form-row">
      <label class="field arc-reason">
        <span class="field-label">${t('arc.borrow_reason')}</span>
        <input type="text" maxlength="500" value=${reason} data-testid="arc-borrow-reason" placeholder=${t('arc.borrow_reason_placeholder')} onInput=${(e: Event) => setReason(inputValue(e))} />
      </label>
      <label class="field arc-days">
        <span class="field-label">${t('arc.borrow_days')}</span>
        <input type="number" min="1" max="365" step="1" value=${days} data-testid="arc-borrow-days" onInput=${(e: Event) => setDays(inputValue(e))} />
      </label>
    </div>
    <p class="muted small">${t('arc.borrow_hint')}</p>
    <${ErrorNote} error=${error} testid="arc-borrow-error" />
    <div><button type="submit" class="btn btn-primary" disabled=${busy} data-testid="arc-borrow-submit">${t('arc.borrow_submit')}</button></div>
  </form>`;
}

function DestroyForm({ ctx, rec }: { ctx: AppContext; rec: ArcRecord }) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  if (rec.state !== 'kept') return null;
  if (!open) {
    return html`<div><button type="button" class="btn btn-small btn-danger-ghost" data-testid="arc-destroy" onClick=${() => setOpen(true)}>${t('arc.destroy')}…</button></div>`;
  }
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!reason.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await ctx.archive.destroy([rec.archive_id], reason.trim());
      toast(t('arc.destroy_sent'), 'success');
      setOpen(false);
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="arc-destroy" data-testid="arc-destroy-form" onSubmit=${submit}>
    <h3>${t('arc.destroy')}</h3>
    <p class="muted small">${t('arc.destroy_hint')}</p>
    <label class="field">
      <span class="field-label">${t('arc.destroy_reason')}</span>
      <textarea rows="2" maxlength="500" value=${reason} data-testid="arc-destroy-reason" onInput=${(e: Event) => setReason(inputValue(e))}></textarea>
    </label>
    <${ErrorNote} error=${error} testid="arc-destroy-error" />
    <div class="task-buttons">
      <button type="submit" class="btn btn-small btn-danger" disabled=${busy || !reason.trim()} data-testid="arc-destroy-submit">${t('arc.destroy_submit')}</button>
      <button type="button" class="btn btn-small btn-ghost" onClick=${() => setOpen(false)}>${t('common.cancel')}</button>
    </div>
  </form>`;
}

function RecordFacts({ rec }: { rec: ArcRecord }) {
  return html`<dl class="arc-facts">
    <dt>${t('arc.code')}</dt><dd><code class="arc-code" data-testid="arc-code">${rec.code}</code></dd>
    <dt>${t('arc.fonds')}</dt><dd>${rec.fonds}</dd>
    <dt>${t('arc.category')}</dt><dd>${rec.category}</dd>
    <dt>${t('arc.year')}</dt><dd>${rec.year}</dd>
    <dt>${t('arc.retention')}</dt>
    <dd data-testid="arc-retention" data-retention=${rec.retention}>
      ${retentionLabel(rec.retention)}${rec.retention_ends_at ? html` <span class="muted small">（${t('arc.retention_until', { time: formatDate(rec.retention_ends_at) })}）</span>` : null}
    </dd>
    <dt>${t('arc.filed')}</dt><dd>${`${rec.filed_by.name} · `}<${Time} iso=${rec.filed_at} /></dd>
    ${rec.state === 'destroyed' ? html`<dt>${t('arc.destroyed')}</dt><dd><${Time} iso=${rec.destroyed_at} /></dd>` : null}
  </dl>`;
}

function RecordView({ ctx, id }: { ctx: AppContext; id: Id }) {
  const arc = ctx.archive;
  const opened = useStore(arc.opened);
  useStore(arc.catalogue);
  if (!opened || opened.id !== id) return null;
  const full = opened.record;
  const rec = full ?? arc.summary(id) ?? null;
  const forbidden = opened.error?.code === 'forbidden';
  return html`<section class="card arc-detail" data-testid=${`arc-detail-${id}`} data-open=${full ? 'true' : 'false'} data-state=${rec?.state ?? ''}>
    ${rec
      ? html`<div class="doc-head">
            <div>
              <div class="doc-number"><code class="arc-code">${rec.code}</code></div>
              <h2 class="doc-title">${rec.title}</h2>
            </div>
            ${rec.state === 'destroyed' ? html`<span class="wf-badge wf-state-rejected">${t('arc.destroyed')}</span>` : html`<span class="wf-badge wf-state-approved">${t('arc.kept')}</span>`}
          </div>
          <${RecordFacts} rec=${rec} />`
      : null}
    ${opened.loading && !rec ? html`<div class="empty">${t('board.loading')}</div>` : null}
    ${forbidden
      ? html`<div class="arc-locked" data-testid="arc-locked"><${Icon} name="lock" /> ${t('arc.locked')}</div>`
      : html`<${ErrorNote} error=${opened.error} testid="arc-detail-error" />`}
    ${full?.files?.length
      ? html`<div class="arc-files" data-testid="arc-files">
          <h3>${t('arc.files')}</h3>
          <${FileLinks} files=${full.files} prefix="arc" />
          <table class="doc-table arc-hashes">
            <thead><tr><th>${t('arc.file_name')}</th><th>SHA-256</th></tr></thead>
            <tbody>${full.files.map((f) => html`<tr key=${f.file_id}><td>${f.name}</td><td><code class="arc-sha">${f.sha256 ?? ''}</code></td></tr>`)}</tbody>
          </table>
        </div>`
      : null}
    ${full?.loans?.length
      ? html`<div class="arc-record-loans">
          <h3>${arc.isArchivist ? t('arc.record_loans') : t('arc.my_record_loans')}</h3>
          <table class="doc-table">
            <thead><tr><th>${t('arc.borrower')}</th><th>${t('arc.borrow_reason')}</th><th>${t('arc.borrow_days')}</th><th>${t('task.col.state')}</th></tr></thead>
            <tbody>
              ${full.loans.map(
                (l) => html`<tr key=${l.loan_id} data-testid=${`arc-record-loan-${l.loan_id}`} data-state=${l.state}>
                  <td>${l.borrower.name}</td><td>${l.reason}</td><td>${l.days}</td>
                  <td><${LoanBadge} loan=${l} /> <span class="muted small">${loanLine(l)}</span></td>
                </tr>`,
              )}
            </tbody>
          </table>
        </div>`
      : null}
    ${rec && !arc.isArchivist ? html`<${BorrowForm} ctx=${ctx} rec=${rec} />` : null}
    ${rec && arc.isArchivist && full ? html`<${DestroyForm} ctx=${ctx} rec=${rec} />` : null}
  </section>`;
}

function FilingForm({ ctx }: { ctx: AppContext }) {
  const arc = ctx.archive;
  const uploads = useUploads();
  const [title, setTitle] = useState('');
  const [retention, setRetention] = useState<Retention>('D30');
  const [category, setCategory] = useState('文书');
  const [year, setYear] = useState(String(new Date().getFullYear()));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const problem = !title.trim() ? t('arc.form.no_title') : uploads.files.length === 0 && !uploads.uploading ? t('doc.form.no_files') : uploadProblem(uploads);
    if (problem) {
      setError(new ApiError({ code: 'bad_request', message: problem }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const { code } = await arc.file({ title: title.trim(), file_ids: uploads.files.map((f) => f.file_id), retention, category: category.trim(), year: Number(year) || null });
      toast(t('arc.filed_toast', { code }), 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card doc-form" data-testid="arc-file-form" onSubmit=${submit}>
    <div class="card-header">
      <h2>${t('arc.file_new')}</h2>
      <button type="button" class="btn btn-small btn-ghost" onClick=${() => arc.close()}>${t('common.cancel')}</button>
    </div>
    <label class="field">
      <span class="field-label">${t('arc.form.title')}<span class="wf-required" aria-hidden="true"> *</span></span>
      <input type="text" maxlength="200" value=${title} data-testid="arc-file-title" onInput=${(e: Event) => setTitle(inputValue(e))} />
    </label>
    <div class="doc-form-row arc-form-row">
      <label class="field">
        <span class="field-label">${t('arc.retention')}</span>
        <select value=${retention} data-testid="arc-file-retention" onChange=${(e: Event) => setRetention((e.currentTarget as HTMLSelectElement).value as Retention)}>
          ${RETENTIONS.map((r) => html`<option key=${r} value=${r}>${retentionLabel(r)}</option>`)}
        </select>
      </label>
      <label class="field">
        <span class="field-label">${t('arc.category')}</span>
        <input type="text" maxlength="20" value=${category} data-testid="arc-file-category" onInput=${(e: Event) => setCategory(inputValue(e))} />
      </label>
      <label class="field">
        <span class="field-label">${t('arc.year')}</span>
        <input type="number" min="1900" max=${new Date().getFullYear()} value=${year} data-testid="arc-file-year" onInput=${(e: Event) => setYear(inputValue(e))} />
      </label>
    </div>
    <div class="field">
      <span class="field-label">${t('arc.files')}<span class="wf-required" aria-hidden="true"> *</span></span>
      <${UploadList} uploads=${uploads} prefix="arc-file" />
      <div><${AttachButton} uploads=${uploads} prefix="arc-file" /></div>
    </div>
    <p class="muted small doc-hint">${t('arc.form.hint')}</p>
    <${ErrorNote} error=${error} testid="arc-file-error" />
    <div class="task-buttons">
      <button type="submit" class="btn btn-primary" disabled=${busy || uploads.uploading} data-testid="arc-file-submit">${t('arc.form.submit')}</button>
    </div>
  </form>`;
}

function Main({ ctx }: { ctx: AppContext }) {
  const view = useStore(ctx.archive.view);
  if (view?.kind === 'file' && ctx.archive.isArchivist) return html`<${FilingForm} ctx=${ctx} />`;
  if (view?.kind === 'record') return html`<${RecordView} key=${view.id} ctx=${ctx} id=${view.id} />`;
  return html`<section class="card wf-welcome"><div class="empty">${t('arc.welcome')}</div></section>`;
}

export function ArchivePanel({ ctx }: { ctx: AppContext }) {
  const arc: ArchiveModel = ctx.archive;
  useEffect(() => {
    void arc.search(arc.catalogue.get().query);
    void arc.loadLoans();
  }, [arc]);
  return html`<div class="pager-layout arc-layout" data-testid="arc-panel">
    <div class="pager-side">
      <${CatalogueCard} ctx=${ctx} />
      <${LoansCard} ctx=${ctx} />
    </div>
    <div class="pager-main"><${Main} ctx=${ctx} /></div>
  </div>`;
}
