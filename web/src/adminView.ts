// The administrator's panel (人员管理): find anyone, deactivated people included, and cut them
// off, let them back, or give them a new password. Shown only to administrators.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { AdminModel, type ManagedUser, type UserState } from './admin';
import { ErrorNote } from './components';
import type { AppContext } from './context';
import { ApiError } from './http';
import { html } from './html';
import { formatAgo, formatDayTime, formatFull, hasKey, t } from './i18n';
import type { Panel } from './panels';
import { useStore } from './store';
import { toast } from './toast';

const PAGE = 100; // admin.users.list answers at most this many
const MIN_PASSWORD = 6;
const STATES: UserState[] = ['all', 'active', 'deactivated'];

type Pending = { kind: 'deactivate' | 'reset'; user: ManagedUser } | null;

function roleLabel(role: string): string {
  const key = `admin.role.${role}`;
  return hasKey(key) ? t(key) : role;
}

function StateBadge({ user }: { user: ManagedUser }) {
  if (!user.deactivated_at) {
    return html`<span class="badge admin-state-active" data-testid=${`admin-state-${user.id}`} data-state="active">
      ${t('admin.active')}
    </span>`;
  }
  return html`<span
    class="badge admin-state-deactivated"
    data-testid=${`admin-state-${user.id}`}
    data-state="deactivated"
    title=${formatFull(user.deactivated_at)}
  >
    ${t('admin.deactivated_at', { time: formatDayTime(user.deactivated_at) })}
  </span>`;
}

function UserRow(props: {
  user: ManagedUser;
  me: string;
  department: string;
  busy: boolean;
  onDeactivate: () => void;
  onReactivate: () => void;
  onReset: () => void;
}) {
  const { user, me } = props;
  const isMe = user.id === me;
  const off = user.deactivated_at !== null;
  return html`<tr class=${`admin-row${off ? ' is-deactivated' : ''}`} data-testid=${`admin-row-${user.id}`}>
    <td class="col-person">
      <div class="person-name">
        ${user.name}${isMe ? html` <span class="me-tag">${t('board.me')}</span>` : null}
      </div>
      <div class="person-title">${user.account}</div>
    </td>
    <td>${props.department}</td>
    <td>${user.title ?? ''}</td>
    <td class="admin-roles">${(user.roles ?? []).filter((r) => r !== 'staff').map(roleLabel).join('、') || roleLabel('staff')}</td>
    <td><${StateBadge} user=${user} /></td>
    <td class="admin-last-seen" title=${user.last_seen ? formatFull(user.last_seen) : ''}>
      ${user.last_seen ? formatAgo(user.last_seen) : t('admin.no_last_seen')}
    </td>
    <td class="col-actions">
      ${off
        ? html`<button
            type="button"
            class="btn btn-small"
            data-testid=${`admin-reactivate-${user.id}`}
            disabled=${props.busy}
            onClick=${props.onReactivate}
          >
            ${t('admin.reactivate')}
          </button>`
        : isMe
          ? null
          : html`<button
              type="button"
              class="btn btn-small btn-danger"
              data-testid=${`admin-deactivate-${user.id}`}
              disabled=${props.busy}
              onClick=${props.onDeactivate}
            >
              ${t('admin.deactivate')}
            </button>`}
      <button
        type="button"
        class="btn btn-small btn-ghost"
        data-testid=${`admin-reset-${user.id}`}
        disabled=${props.busy}
        onClick=${props.onReset}
      >
        ${t('admin.reset_password')}
      </button>
    </td>
  </tr>`;
}

function DeactivateDialog(props: { user: ManagedUser; onConfirm: () => Promise<void>; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
    } catch (err) {
      setError(ApiError.from(err));
      setBusy(false);
    }
  };
  return html`<div class="modal" role="dialog" aria-modal="true" aria-labelledby="admin-dialog-title" data-testid="admin-deactivate-dialog">
    <div class="form">
      <h2 id="admin-dialog-title">${t('admin.deactivate_title', { name: props.user.name })}</h2>
      <p class="muted">${t('admin.deactivate_note')}</p>
      <${ErrorNote} error=${error} testid="admin-dialog-error" />
      <div class="modal-actions">
        <button type="button" class="btn btn-ghost" onClick=${props.onClose}>${t('admin.cancel')}</button>
        <button
          type="button"
          class="btn btn-danger"
          data-testid="admin-deactivate-confirm"
          disabled=${busy}
          onClick=${() => void confirm()}
        >
          ${busy ? t('admin.working') : t('admin.deactivate_confirm')}
        </button>
      </div>
    </div>
  </div>`;
}

function ResetDialog(props: { user: ManagedUser; onSubmit: (password: string) => Promise<void>; onClose: () => void }) {
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);

  const submit = async (event: Event) => {
    event.preventDefault();
    if (password.trim().length < MIN_PASSWORD) {
      setError(new ApiError({ code: 'bad_request', message: t('admin.password_short') }));
      return;
    }
    if (password !== again) {
      setError(new ApiError({ code: 'bad_request', message: t('admin.password_mismatch') }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await props.onSubmit(password);
    } catch (err) {
      setError(ApiError.from(err));
      setBusy(false);
    }
  };
  const field = (label: string, value: string, set: (v: string) => void, testid: string, ref?: unknown) =>
    html`<label class="field">
      <span class="field-label">${label}</span>
      <input
        ref=${ref}
        type="password"
        autocomplete="new-password"
        maxlength="200"
        data-testid=${testid}
        value=${value}
        onInput=${(e: Event) => set((e.currentTarget as HTMLInputElement).value)}
      />
    </label>`;
  return html`<div class="modal" role="dialog" aria-modal="true" aria-labelledby="admin-dialog-title" data-testid="admin-reset-dialog">
    <form class="form" onSubmit=${submit} novalidate>
      <h2 id="admin-dialog-title">${t('admin.reset_title', { name: props.user.name })}</h2>
      <p class="muted">${t('admin.reset_note', { name: props.user.name })}</p>
      ${field(t('admin.new_password'), password, setPassword, 'admin-new-password', first)}
      ${field(t('admin.new_password_again'), again, setAgain, 'admin-new-password-again')}
      <${ErrorNote} error=${error} testid="admin-dialog-error" />
      <div class="modal-actions">
        <button type="button" class="btn btn-ghost" onClick=${props.onClose}>${t('admin.cancel')}</button>
        <button type="submit" class="btn btn-primary" data-testid="admin-reset-submit" disabled=${busy}>
          ${busy ? t('admin.working') : t('admin.reset_submit')}
        </button>
      </div>
    </form>
  </div>`;
}

export function AdminPanel({ ctx }: { ctx: AppContext }) {
  const model = useMemo(() => new AdminModel(ctx.api), [ctx.api]);
  useEffect(() => {
    void model.reload();
    return () => model.dispose();
  }, [model]);
  const users = useStore(model.users);
  const departments = useStore(model.departments);
  const loading = useStore(model.loading);
  const error = useStore(model.error);
  const query = useStore(model.query);
  const state = useStore(model.state);
  const [pending, setPending] = useState<Pending>(null);
  const [busyId, setBusyId] = useState<string | null>(null);

  useEffect(() => {
    if (!pending) return undefined;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setPending(null);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [pending]);

  const reactivate = async (user: ManagedUser) => {
    setBusyId(user.id);
    try {
      await model.reactivate(user.id);
      toast(t('admin.reactivated_toast', { name: user.name }), 'success');
    } catch (err) {
      model.error.set(ApiError.from(err));
    } finally {
      setBusyId(null);
    }
  };

  return html`<section class="card admin" data-testid="admin-panel" aria-labelledby="admin-title">
    <div class="card-header">
      <h2 id="admin-title">${t('admin.title')}</h2>
      <div class="board-tools">
        <input
          class="admin-search"
          type="search"
          data-testid="admin-search"
          placeholder=${t('admin.search')}
          value=${query}
          onInput=${(e: Event) => model.setQuery((e.currentTarget as HTMLInputElement).value)}
        />
        <select
          data-testid="admin-state"
          value=${state}
          onChange=${(e: Event) => model.setState((e.currentTarget as HTMLSelectElement).value as UserState)}
        >
          ${STATES.map((s) => html`<option key=${s} value=${s}>${t(`admin.state.${s}`)}</option>`)}
        </select>
        <button type="button" class="btn btn-ghost btn-small" onClick=${() => void model.reload()}>
          ${t('admin.refresh')}
        </button>
      </div>
    </div>
    <${ErrorNote} error=${error} testid="admin-error" />
    <div class="status-summary">
      <span class="summary-total" data-testid="admin-count" data-count=${users.length}>
        ${t('admin.count', { n: users.length })}
      </span>
      ${users.length >= PAGE ? html`<span class="muted">${t('admin.more', { n: PAGE })}</span>` : null}
    </div>
    <div class="table-wrap">
      <table class="board-table admin-table" data-testid="admin-table">
        <thead>
          <tr>
            <th class="col-person">${t('admin.col.person')}</th>
            <th>${t('admin.col.department')}</th>
            <th>${t('admin.col.title')}</th>
            <th>${t('admin.col.roles')}</th>
            <th>${t('admin.col.state')}</th>
            <th>${t('admin.col.last_seen')}</th>
            <th class="col-actions">${t('admin.col.actions')}</th>
          </tr>
        </thead>
        <tbody>
          ${users.map(
            (user) => html`<${UserRow}
              key=${user.id}
              user=${user}
              me=${ctx.me.id}
              department=${user.department_id ? (departments.get(user.department_id) ?? '') : ''}
              busy=${busyId === user.id}
              onDeactivate=${() => setPending({ kind: 'deactivate', user })}
              onReactivate=${() => void reactivate(user)}
              onReset=${() => setPending({ kind: 'reset', user })}
            />`,
          )}
        </tbody>
      </table>
      ${users.length === 0 ? html`<div class="empty">${loading ? t('admin.loading') : t('admin.empty')}</div>` : null}
    </div>
    ${pending
      ? html`<div class="modal-backdrop" onClick=${(e: Event) => e.target === e.currentTarget && setPending(null)}>
          ${pending.kind === 'deactivate'
            ? html`<${DeactivateDialog}
                user=${pending.user}
                onClose=${() => setPending(null)}
                onConfirm=${async () => {
                  await model.deactivate(pending.user.id);
                  setPending(null);
                  toast(t('admin.deactivated_toast', { name: pending.user.name }), 'success');
                }}
              />`
            : html`<${ResetDialog}
                user=${pending.user}
                onClose=${() => setPending(null)}
                onSubmit=${async (password: string) => {
                  await model.resetPassword(pending.user.id, password);
                  setPending(null);
                  toast(t('admin.reset_toast', { name: pending.user.name }), 'success');
                }}
              />`}
        </div>`
      : null}
  </section>`;
}

export const adminPanel: Panel = { id: 'admin', label: 'nav.admin', View: AdminPanel };
