// Idle reporting: after five minutes without mouse or keyboard, or while the tab is hidden,
// tell the server `presence.idle {idle:true}`; on activity `{idle:false}`.
import type { Connection } from './api';

const IDLE_AFTER_MS = 5 * 60_000;
const CHECK_EVERY_MS = 10_000;
const ACTIVITY_EVENTS = ['mousemove', 'mousedown', 'keydown', 'wheel', 'touchstart', 'focus'] as const;

export function startIdleReporting(api: Connection): () => void {
  let idle = false;
  let lastActivity = Date.now();

  const report = (value: boolean) => {
    if (value === idle) return;
    idle = value;
    api.signal('presence.idle', { idle: value });
  };

  const onActivity = () => {
    lastActivity = Date.now();
    if (!document.hidden) report(false);
  };

  const onVisibility = () => {
    if (document.hidden) report(true);
    else onActivity();
  };

  const check = setInterval(() => {
    if (!document.hidden && Date.now() - lastActivity >= IDLE_AFTER_MS) report(true);
  }, CHECK_EVERY_MS);

  for (const name of ACTIVITY_EVENTS) window.addEventListener(name, onActivity, { passive: true });
  document.addEventListener('visibilitychange', onVisibility);
  // A new connection starts out active on the server: restate idleness after a reconnect.
  const offConnected = api.onConnected(() => {
    if (idle || document.hidden) {
      idle = true;
      api.signal('presence.idle', { idle: true });
    }
  });

  return () => {
    clearInterval(check);
    for (const name of ACTIVITY_EVENTS) window.removeEventListener(name, onActivity);
    document.removeEventListener('visibilitychange', onVisibility);
    offConnected();
  };
}
