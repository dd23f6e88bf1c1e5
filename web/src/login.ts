import { useState } from 'preact/hooks';
import { login } from './auth';
import { ErrorNote } from './components';
import { ApiError } from './http';
import { html } from './html';
import { t } from './i18n';
import { LangSwitch } from './shell';

export function LoginPage() {
  const [account, setAccount] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    if (!account.trim() || !password) {
      setError(new ApiError({ code: 'bad_request', message: t('login.missing') }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await login(account.trim(), password);
    } catch (err) {
      const apiError = ApiError.from(err);
      setError(
        apiError.code === 'unauthorized'
          ? new ApiError({ code: 'unauthorized', message: '' })
          : apiError,
      );
      setBusy(false);
    }
  };

  return html`<div class="login-page">
    <div class="login-lang"><${LangSwitch} /></div>
    <form class="card login-card form" onSubmit=${submit} data-testid="login-form" novalidate>
      <div class="login-brand">
        <span class="logo" aria-hidden="true">联</span>
        <div>
          <div class="brand-name">${t('app.name')}</div>
          <div class="muted">${t('app.tagline')}</div>
        </div>
      </div>
      <h1>${t('login.title')}</h1>
      <label class="field">
        <span class="field-label">${t('login.account')}</span>
        <input
          type="text"
          name="account"
          autocomplete="username"
          autofocus
          data-testid="login-account"
          value=${account}
          onInput=${(e: Event) => setAccount((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      <label class="field">
        <span class="field-label">${t('login.password')}</span>
        <input
          type="password"
          name="password"
          autocomplete="current-password"
          data-testid="login-password"
          value=${password}
          onInput=${(e: Event) => setPassword((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      ${error
        ? error.code === 'unauthorized'
          ? html`<div class="error-note" role="alert" data-testid="login-error" data-code="unauthorized">
              <strong>${t('login.failed')}</strong>
            </div>`
          : html`<${ErrorNote} error=${error} testid="login-error" />`
        : null}
      <button type="submit" class="btn btn-primary btn-block" data-testid="login-submit" disabled=${busy}>
        ${busy ? t('login.busy') : t('login.submit')}
      </button>
      <p class="muted small">${t('login.hint')}</p>
    </form>
  </div>`;
}
