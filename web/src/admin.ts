// The administrator's list of people (deactivated ones too) and what can be done to them:
// deactivate (every session ends, live pages are signed out), reactivate, set a new password.
import type { Connection } from './api';
import { ApiError } from './http';
import { Store } from './store';
import type { Department, Id, User } from './types';

/** A person as `admin.users.list` returns them. */
export interface ManagedUser extends User {
  deactivated_at: string | null;
  last_seen: string | null;
}

export type UserState = 'all' | 'active' | 'deactivated';

const SEARCH_DEBOUNCE_MS = 250;

export class AdminModel {
  readonly users = new Store<ManagedUser[]>([]);
  readonly departments = new Store<Map<Id, string>>(new Map());
  readonly loading = new Store<boolean>(false);
  readonly error = new Store<ApiError | null>(null);
  readonly query = new Store<string>('');
  readonly state = new Store<UserState>('all');

  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  /** answers to older searches arrive late sometimes: only the newest one is shown */
  private generation = 0;
  private readonly offConnected: () => void;

  constructor(private readonly api: Connection) {
    this.offConnected = api.onConnected(() => void this.reload());
  }

  dispose(): void {
    clearTimeout(this.searchTimer);
    this.offConnected();
  }

  setQuery(value: string): void {
    this.query.set(value);
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => void this.reload(), SEARCH_DEBOUNCE_MS);
  }

  setState(value: UserState): void {
    this.state.set(value);
    void this.reload();
  }

  async reload(): Promise<void> {
    const generation = ++this.generation;
    this.loading.set(true);
    try {
      const query = this.query.get().trim();
      const [{ users }, { departments }] = await Promise.all([
        this.api.command<{ users: ManagedUser[] }>('admin.users.list', {
          state: this.state.get(),
          ...(query ? { query } : {}),
        }),
        this.api.command<{ departments: Department[] }>('directory.departments', {}),
      ]);
      if (generation !== this.generation) return;
      this.users.set(users ?? []);
      this.departments.set(new Map((departments ?? []).map((d) => [d.id, d.name])));
      this.error.set(null);
    } catch (err) {
      if (generation === this.generation) this.error.set(ApiError.from(err));
    } finally {
      if (generation === this.generation) this.loading.set(false);
    }
  }

  async deactivate(userId: Id): Promise<ManagedUser> {
    return this.changed(await this.api.command<{ user: ManagedUser }>('admin.users.deactivate', { user_id: userId }));
  }

  async reactivate(userId: Id): Promise<ManagedUser> {
    return this.changed(await this.api.command<{ user: ManagedUser }>('admin.users.reactivate', { user_id: userId }));
  }

  async resetPassword(userId: Id, password: string): Promise<ManagedUser> {
    return this.changed(
      await this.api.command<{ user: ManagedUser }>('admin.users.reset_password', { user_id: userId, password }),
    );
  }

  /** The person as the server now has them, in place in the list (unless the filter drops them). */
  private changed({ user }: { user: ManagedUser }): ManagedUser {
    const state = this.state.get();
    const shown = state === 'all' || (state === 'deactivated') === (user.deactivated_at !== null);
    this.users.update((list) =>
      shown ? list.map((u) => (u.id === user.id ? user : u)) : list.filter((u) => u.id !== user.id),
    );
    return user;
  }
}
