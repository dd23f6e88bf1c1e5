import { useEffect, useState } from 'preact/hooks';
import { session } from './auth';
import { createContext, type AppContext } from './context';
import { html } from './html';
import { lang } from './i18n';
import { LoginPage } from './login';
import { Shell } from './shell';
import { useStore } from './store';
import { Toasts } from './toast';

/** Login page or the signed-in shell; one AppContext per signed-in user. */
export function App() {
  useStore(lang);
  const current = useStore(session);
  const userId = current?.user.id ?? null;
  const [ctx, setCtx] = useState<AppContext | null>(null);

  useEffect(() => {
    const me = session.get()?.user;
    if (!me) {
      setCtx(null);
      return undefined;
    }
    const created = createContext(me);
    setCtx(created);
    return () => created.dispose();
  }, [userId]);

  return html`
    ${current && ctx && ctx.me.id === userId ? html`<${Shell} ctx=${ctx} />` : current ? null : html`<${LoginPage} />`}
    <${Toasts} />
  `;
}
