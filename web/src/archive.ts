// The archive (档案): the catalogue (`archive.search`, `archive.list`), a record's page
// (`archive.get`: files with SHA-256, code, loans), borrowing (`archive.borrow`) and my loans
// (`archive.loans`, live from `archive.loan_started` / `.loan_ended`), and for archivists the
// filing form (`archive.file`), all loans and the destruction request (`archive.destroy`).
// The views are in archiveView.ts.
import type { Connection } from './api';
import { ApiError } from './http';
import { t } from './i18n';
import { Store } from './store';
import { toast } from './toast';
import type { FileInfo, Id, PersonRef, User } from './types';

export type Retention = 'Y' | 'D30' | 'D10';
export const RETENTIONS: Retention[] = ['Y', 'D30', 'D10'];

export interface ArcRecord {
  archive_id: Id;
  code: string;
  title: string;
  fonds: string;
  category: string;
  year: number;
  retention: Retention;
  document_id: Id | null;
  filed_by: PersonRef;
  filed_at: string;
  retention_ends_at: string | null;
  state: 'kept' | 'destroyed';
  destroyed_at: string | null;
  may_open?: boolean;
  files?: (FileInfo & { sha256?: string })[];
  loans?: Loan[];
}

export type LoanState = 'pending' | 'active' | 'ended' | 'refused';

export interface Loan {
  loan_id: Id;
  archive_id: Id;
  borrower: PersonRef;
  instance_id: Id;
  days: number;
  reason: string;
  state: LoanState;
  created_at: string;
  starts_at: string | null;
  ends_at: string | null;
  closed_at: string | null;
}

export interface Catalogue {
  query: string;
  hits: ArcRecord[];
  loading: boolean;
  error: ApiError | null;
}

export interface OpenRecord {
  id: Id;
  record: ArcRecord | null;
  /** `forbidden`: the catalogue entry only, to borrow it */
  error: ApiError | null;
  loading: boolean;
}

export type ArcView = { kind: 'record'; id: Id } | { kind: 'file' } | null;

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function loan(raw: Partial<Loan>): Loan {
  return {
    loan_id: str(raw.loan_id),
    archive_id: str(raw.archive_id),
    borrower: { id: str(raw.borrower?.id), name: raw.borrower?.name ?? '' },
    instance_id: str(raw.instance_id),
    days: Number(raw.days) || 0,
    reason: raw.reason ?? '',
    state: (['pending', 'active', 'ended', 'refused'] as const).includes(raw.state as LoanState) ? (raw.state as LoanState) : 'pending',
    created_at: raw.created_at ?? '',
    starts_at: raw.starts_at ?? null,
    ends_at: raw.ends_at ?? null,
    closed_at: raw.closed_at ?? null,
  };
}

function record(raw: Partial<ArcRecord>): ArcRecord {
  return {
    archive_id: str(raw.archive_id),
    code: raw.code ?? '',
    title: raw.title ?? '',
    fonds: raw.fonds ?? '',
    category: raw.category ?? '',
    year: Number(raw.year) || 0,
    retention: (RETENTIONS.includes(raw.retention as Retention) ? raw.retention : 'Y') as Retention,
    document_id: raw.document_id ? str(raw.document_id) : null,
    filed_by: { id: str(raw.filed_by?.id), name: raw.filed_by?.name ?? '' },
    filed_at: raw.filed_at ?? '',
    retention_ends_at: raw.retention_ends_at ?? null,
    state: raw.state === 'destroyed' ? 'destroyed' : 'kept',
    destroyed_at: raw.destroyed_at ?? null,
    may_open: raw.may_open,
    files: raw.files?.map((f) => ({ ...f, file_id: str(f.file_id) })),
    loans: raw.loans?.map(loan),
  };
}

export class ArchiveModel {
  readonly catalogue = new Store<Catalogue>({ query: '', hits: [], loading: false, error: null });
  readonly view = new Store<ArcView>(null);
  readonly opened = new Store<OpenRecord | null>(null);
  readonly loans = new Store<{ loans: Loan[]; all: boolean; error: ApiError | null }>({ loans: [], all: false, error: null });
  private searchRequest = 0;
  private openRequest = 0;

  constructor(
    private readonly api: Connection,
    readonly me: User,
  ) {
    api.on('archive.loan_started', (data: { title?: string; ends_at?: string; archive_id?: unknown }) => {
      toast(t('arc.loan_started_toast', { title: data?.title ?? '' }), 'success', 8000);
      this.loanChanged(str(data?.archive_id));
    });
    api.on('archive.loan_ended', (data: { title?: string; archive_id?: unknown }) => {
      toast(t('arc.loan_ended_toast', { title: data?.title ?? '' }), 'info', 8000);
      this.loanChanged(str(data?.archive_id));
    });
    api.on('archive.filed', () => void this.search(this.catalogue.get().query));
    api.on('archive.destroyed', () => {
      void this.search(this.catalogue.get().query);
      const o = this.opened.get();
      if (o) void this.fetchOpen(o.id);
    });
    api.on('workflow.finished', (data: { key?: string }) => {
      if (data?.key === 'archive_borrow') void this.loadLoans();
    });
    // Archivists borrow nothing: their list is everyone's loans.
    if (this.isArchivist) this.loans.set({ loans: [], all: true, error: null });
    api.onConnected(() => void this.reload());
  }

  get isArchivist(): boolean {
    return this.me.roles?.some((r) => r === 'archivist' || r === 'admin') ?? false;
  }

  async reload(): Promise<void> {
    await Promise.all([this.search(this.catalogue.get().query), this.loadLoans()]);
    const o = this.opened.get();
    if (o) await this.fetchOpen(o.id);
  }

  private loanChanged(archiveId: Id): void {
    void this.loadLoans();
    void this.search(this.catalogue.get().query);
    if (this.opened.get()?.id === archiveId) void this.fetchOpen(archiveId);
  }

  async search(query: string): Promise<void> {
    const mine = ++this.searchRequest;
    const q = query.trim();
    this.catalogue.update((c) => ({ ...c, query: q, loading: true, error: null }));
    try {
      const { hits } = await this.api.command<{ hits: Partial<ArcRecord>[] }>('archive.search', { query: q, limit: 50 });
      if (mine !== this.searchRequest) return;
      this.catalogue.set({ query: q, hits: (hits ?? []).map(record), loading: false, error: null });
    } catch (err) {
      if (mine === this.searchRequest) this.catalogue.set({ query: q, hits: [], loading: false, error: ApiError.from(err) });
    }
  }

  async loadLoans(all = this.loans.get().all): Promise<void> {
    try {
      const { loans } = await this.api.command<{ loans: Partial<Loan>[] }>('archive.loans', { all, limit: 50 });
      this.loans.set({ loans: (loans ?? []).map(loan), all, error: null });
    } catch (err) {
      this.loans.set({ loans: [], all, error: ApiError.from(err) });
    }
  }

  /** The catalogue entry of a record, when it is in the list on screen. */
  summary(id: Id): ArcRecord | undefined {
    return this.catalogue.get().hits.find((h) => h.archive_id === id);
  }

  open(id: Id): void {
    this.view.set({ kind: 'record', id });
    this.opened.set({ id, record: null, error: null, loading: true });
    void this.fetchOpen(id);
  }

  async fetchOpen(id: Id): Promise<void> {
    const mine = ++this.openRequest;
    try {
      const { record: rec } = await this.api.command<{ record: Partial<ArcRecord> }>('archive.get', { archive_id: id });
      if (mine === this.openRequest) this.opened.set({ id, record: record(rec ?? {}), error: null, loading: false });
    } catch (err) {
      if (mine === this.openRequest) this.opened.set({ id, record: null, error: ApiError.from(err), loading: false });
    }
  }

  showFiling(): void {
    this.view.set({ kind: 'file' });
  }

  close(): void {
    this.view.set(null);
    this.opened.set(null);
  }

  async borrow(archiveId: Id, reason: string, days: number): Promise<void> {
    await this.api.command('archive.borrow', { archive_id: archiveId, reason, days });
    await this.loadLoans();
  }

  async file(draft: { title: string; file_ids: Id[]; retention: Retention; category: string; year: number | null }): Promise<{ archive_id: Id; code: string }> {
    const payload: Record<string, unknown> = { title: draft.title, file_ids: draft.file_ids, retention: draft.retention };
    if (draft.category) payload.category = draft.category;
    if (draft.year) payload.year = draft.year;
    const answer = await this.api.command<{ archive_id: Id; code: string }>('archive.file', payload);
    await this.search('');
    this.open(str(answer.archive_id));
    return answer;
  }

  async destroy(archiveIds: Id[], reason: string): Promise<void> {
    await this.api.command('archive.destroy', { archive_ids: archiveIds, reason });
  }
}
