// The frame around the panels: header with navigation, connection state, unread notes,
// language switch and sign-out.
import { useEffect, useState } from 'preact/hooks';
import type { ConnectionStatus } from './api';
import { adminPanel } from './adminView';
import { logout } from './auth';
import type { AppContext } from './context';
import { html } from './html';
import { lang, setLang, t } from './i18n';
import { panels, panelTitle, type Panel } from './panels';
import { Store, useStore } from './store';

/** Ticks every 30 s so relative times ("5 分钟前", "明天") stay true. */
export const clock = new Store<number>(Date.now());
setInterval(() => clock.set(Date.now()), 30_000);

export function LangSwitch() {
  const current = useStore(lang);
  return html`<button
    type="button"
    class="btn btn-ghost btn-small lang-switch"
    data-testid="lang-switch"
    data-lang=${current}
    title=${t('header.lang_title')}
    onClick=${() => setLang(current === 'zh' ? 'en' : 'zh')}
  >
    ${t('header.lang')}
  </button>`;
}

function connectionLabel(status: ConnectionStatus): string {
  if (status.state === 'connected') return t('conn.connected');
  if (status.state === 'offline') return t('conn.offline');
  if (status.attempt > 0) return t('conn.reconnecting_n', { n: status.attempt });
  return status.wasConnected ? t('conn.reconnecting') : t('conn.connecting');
}

export function ConnectionIndicator({ ctx }: { ctx: AppContext }) {
  const status = useStore(ctx.api.status);
  return html`<div
    class=${`conn conn-${status.state}`}
    data-testid="connection-indicator"
    data-state=${status.state}
    data-attempt=${status.attempt}
    role="status"
    aria-live="polite"
  >
    <span class="conn-dot" aria-hidden="true"></span>
    <span class="conn-label">${connectionLabel(status)}</span>
  </div>`;
}

function UnreadNotes({ ctx }: { ctx: AppContext }) {
  const notes = useStore(ctx.notes.notes);
  const unread = notes.filter((n) => !n.read_at).length;
  return html`<button
    type="button"
    class=${`header-notes${unread > 0 ? ' has-unread' : ''}`}
    data-testid="header-notes"
    data-count=${unread}
    title=${t('header.notes_unread', { n: unread })}
    onClick=${() => {
      location.hash = '#board';
      setTimeout(() => document.getElementById('notes-panel')?.scrollIntoView({ behavior: 'smooth' }));
    }}
  >
    <span aria-hidden="true">✉</span>
    <span class="header-notes-count">${unread}</span>
  </button>`;
}

/**
 * "(3) 联络 · Liaison": unread notes plus every panel's unread items: the to-do inbox's open
 * count (the server's), pages, meeting messages; not the circulation and approval badges, whose
 * items the to-do count holds already.
 */
function DocumentTitle({ ctx }: { ctx: AppContext }) {
  const notes = useStore(ctx.notes.notes);
  const [panelUnread, setPanelUnread] = useState(0);
  useEffect(() => {
    const stores = panels.flatMap((p) => (p.unread && p.inTitle !== false ? [p.unread(ctx)] : []));
    const sum = () => setPanelUnread(stores.reduce((n, store) => n + store.get(), 0));
    sum();
    const offs = stores.map((store) => store.subscribe(sum));
    return () => offs.forEach((off) => off());
  }, [ctx]);
  const unread = notes.filter((n) => !n.read_at).length + panelUnread;
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) ${t('app.name')} · Liaison` : `${t('app.name')} · Liaison`;
  }, [unread, lang.get()]);
  return null;
}

const noUnread = new Store<number>(0);

function NavItem({ ctx, panel, active }: { ctx: AppContext; panel: Panel; active: boolean }) {
  const unread = useStore(panel.unread?.(ctx) ?? noUnread);
  return html`<a
    href=${`#${panel.id}`}
    class=${`nav-item${active ? ' active' : ''}`}
    data-testid=${`nav-${panel.id}`}
    data-unread=${panel.unread ? unread : undefined}
    aria-current=${active ? 'page' : undefined}
  >
    ${panelTitle(panel)}
    ${unread > 0 ? html`<span class="nav-badge" aria-label=${t('nav.unread', { n: unread })}>${unread}</span>` : null}
    ${panel.NavExtra ? html`<${panel.NavExtra} ctx=${ctx} />` : null}
  </a>`;
}

/** The work area's panels, and for an administrator the people administration too. */
function panelsFor(ctx: AppContext): Panel[] {
  return ctx.me.roles?.includes('admin') ? [...panels, adminPanel] : panels;
}

function currentPanelId(shown: Panel[]): string {
  const id = location.hash.replace(/^#/, '');
  return shown.some((p) => p.id === id) ? id : shown[0].id;
}

export function Shell({ ctx }: { ctx: AppContext }) {
  useStore(clock);
  const shown = panelsFor(ctx);
  const [panelId, setPanelId] = useState(() => currentPanelId(shown));
  useEffect(() => {
    const onHash = () => setPanelId(currentPanelId(panelsFor(ctx)));
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, [ctx]);
  const panel = shown.find((p) => p.id === panelId) ?? shown[0];
  const { me } = ctx;

  return html`<div class="shell">
    <header class="app-header">
      <div class="brand">
        <span class="logo" aria-hidden="true">联</span>
        <span class="brand-name">${t('app.name')}</span>
      </div>
      <nav class="nav" aria-label=${t('nav.label')}>
        ${shown.map((p) => html`<${NavItem} key=${p.id} ctx=${ctx} panel=${p} active=${p.id === panel.id} />`)}
      </nav>
      <div class="header-right">
        <${ConnectionIndicator} ctx=${ctx} />
        <${UnreadNotes} ctx=${ctx} />
        <div class="user-chip" data-testid="current-user" data-user-id=${me.id}>
          <span class="user-name">${me.name}</span>
          ${me.title ? html`<span class="user-title">${me.title}</span>` : null}
        </div>
        <${LangSwitch} />
        <button type="button" class="btn btn-ghost btn-small" data-testid="logout" onClick=${() => {
          ctx.api.stop();
          void logout();
        }}>
          ${t('header.logout')}
        </button>
      </div>
    </header>
    <main class="work-area">
      <${panel.View} ctx=${ctx} />
    </main>
    <${DocumentTitle} ctx=${ctx} />
    <div class="overlay-stack">
      ${panels.map((p) => (p.Overlay ? html`<${p.Overlay} key=${p.id} ctx=${ctx} />` : null))}
    </div>
  </div>`;
}
