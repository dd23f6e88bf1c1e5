// How a page announces itself: a short WebAudio chime (no audio files; a longer, insistent
// pattern for urgent pages) and a system notification while the tab is not in front.
import { Store } from './store';

const SOUND_KEY = 'liaison.pager.sound';
const CLAIM_KEY = 'liaison.pager.alerted';

function savedSound(): boolean {
  try {
    return localStorage.getItem(SOUND_KEY) !== 'off';
  } catch {
    return true;
  }
}

/** Whether pages make a sound; remembered in localStorage. */
export const soundOn = new Store<boolean>(savedSound());

export function setSound(on: boolean): void {
  try {
    localStorage.setItem(SOUND_KEY, on ? 'on' : 'off');
  } catch {
    // this page only
  }
  soundOn.set(on);
  if (on) unlockAudio();
}

type Permission = NotificationPermission | 'unsupported';

function currentPermission(): Permission {
  return typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
}

export const notifyPermission = new Store<Permission>(currentPermission());

/** Ask for notification permission: call from a user gesture (the bell button). */
export async function requestNotify(): Promise<void> {
  unlockAudio();
  if (typeof Notification === 'undefined') return;
  try {
    notifyPermission.set(await Notification.requestPermission());
  } catch {
    notifyPermission.set(currentPermission());
  }
}

let audio: AudioContext | null = null;

/** Browsers start audio suspended until a user gesture: create/resume it on one. */
export function unlockAudio(): void {
  try {
    const Ctor =
      window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
    if (!Ctor) return;
    audio ??= new Ctor();
    if (audio.state === 'suspended') void audio.resume();
  } catch {
    audio = null;
  }
}

for (const name of ['pointerdown', 'keydown'] as const) {
  window.addEventListener(name, unlockAudio, { passive: true });
}

/** [frequency Hz, start s, length s] */
type Tone = [number, number, number];

const NORMAL: Tone[] = [
  [880, 0, 0.12],
  [1175, 0.16, 0.16],
];
// Three rising bursts of alternating high tones.
const URGENT: Tone[] = [0, 0.5, 1.0].flatMap((start): Tone[] => [
  [1320, start, 0.09],
  [990, start + 0.11, 0.09],
  [1320, start + 0.22, 0.14],
]);

export function chime(urgent: boolean): void {
  if (!soundOn.get() || !audio || audio.state !== 'running') return;
  const now = audio.currentTime + 0.02;
  const volume = urgent ? 0.25 : 0.15;
  for (const [frequency, start, length] of urgent ? URGENT : NORMAL) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = urgent ? 'square' : 'sine';
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, now + start);
    gain.gain.exponentialRampToValueAtTime(volume, now + start + 0.015);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + start + length);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + start);
    osc.stop(now + start + length + 0.02);
  }
}

/** One short beep (the to-do inbox's urgent arrivals, schedule reminders). */
export function beep(frequency = 988, length = 0.18): void {
  if (!soundOn.get() || !audio || audio.state !== 'running') return;
  const now = audio.currentTime + 0.02;
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.type = 'sine';
  osc.frequency.value = frequency;
  gain.gain.setValueAtTime(0.0001, now);
  gain.gain.exponentialRampToValueAtTime(0.2, now + 0.015);
  gain.gain.exponentialRampToValueAtTime(0.0001, now + length);
  osc.connect(gain).connect(audio.destination);
  osc.start(now);
  osc.stop(now + length + 0.02);
}

/** Whether the user is looking at this tab right now. */
export function tabInFront(): boolean {
  return !document.hidden && document.hasFocus();
}

/**
 * Several tabs of one user all get the page: let one of them ring. A tab in front claims at
 * once, background tabs a moment later, so the visible one usually wins.
 */
export function claimAlert(id: string, ring: () => void): void {
  const claim = () => {
    try {
      if (localStorage.getItem(CLAIM_KEY) === id) return;
      localStorage.setItem(CLAIM_KEY, id);
    } catch {
      // no storage: every tab rings
    }
    ring();
  };
  if (!document.hidden) claim();
  else setTimeout(claim, 300);
}

/** A system notification, only when the tab is not in front. Clicking it focuses the tab. */
export function notify(title: string, body: string, tag: string, urgent: boolean, onClick: () => void): void {
  if (tabInFront() || currentPermission() !== 'granted') return;
  try {
    const n = new Notification(title, { body, tag, requireInteraction: urgent });
    n.onclick = () => {
      window.focus();
      onClick();
      n.close();
    };
  } catch {
    // some browsers only allow notifications from a service worker
  }
}
