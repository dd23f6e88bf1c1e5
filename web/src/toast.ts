import { html } from './html';
import { t } from './i18n';
import { Store, useStore } from './store';

export type ToastKind = 'info' | 'success' | 'error';

interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
}

const toasts = new Store<Toast[]>([]);
let nextId = 1;

export function toast(text: string, kind: ToastKind = 'info', ms = 5000): void {
  const id = nextId++;
  toasts.update((list) => [...list.slice(-4), { id, kind, text }]);
  setTimeout(() => dismiss(id), ms);
}

function dismiss(id: number): void {
  toasts.update((list) => list.filter((item) => item.id !== id));
}

export function Toasts() {
  const list = useStore(toasts);
  return html`
    <div class="toasts" role="status" aria-live="polite">
      ${list.map(
        (item) => html`
          <div key=${item.id} class=${`toast toast-${item.kind}`} data-testid="toast">
            <span>${item.text}</span>
            <button class="toast-close" title=${t('common.close')} onClick=${() => dismiss(item.id)}>
              ×
            </button>
          </div>
        `,
      )}
    </div>
  `;
}
