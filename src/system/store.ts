// The persisted state (lowdb): client assignments and what must be put back
// on flush. lowdb writes through steno (temp file + rename), so a crash leaves
// either the old or the new file. A store that does not read back as ours is
// an error the operator sees, never silently replaced with an empty one: the
// CLI refuses it; the daemon moves it aside, says so, and starts from the
// backup taken at its last good start (the kernel's client set fills in the
// rest, see core/adopt.ts).
// The daemon is the only writer; the CLI reads it only when no daemon runs.

import { copyFile, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import type { ClientRecord, StoreData } from '../model/state.js';
import { readStore } from '../schema/store.js';

export const STORE_FILE = 'dispatcher.json';
/** A copy of the store as it was at the last start that read it cleanly. */
export const BACKUP_FILE = 'dispatcher.json.bak';

/** What the daemon did with a store it could not use. */
export interface StoreRecovery {
  readonly problem: string;
  /** Where the unusable file was moved, for inspection. */
  readonly movedTo: string;
  readonly backup: 'used' | 'missing' | 'unusable';
}

export class StoreError extends Error {
  constructor(
    path: string,
    readonly detail: string,
  ) {
    super(`state store ${path} is unusable: ${detail}. Move it aside to start with no assignments, or restore a backup.`);
    this.name = 'StoreError';
  }
}

function emptyData(): StoreData {
  return { version: 1, clients: {}, sysctlOriginals: {}, createdTables: [] };
}

/** The data as the store schema reads it (src/schema/store.ts), or a StoreError saying why it is not ours. */
function validate(path: string, data: unknown): StoreData {
  const read = readStore(data);
  if ('problem' in read) throw new StoreError(path, read.problem);
  return read.data;
}

export class Store {
  private constructor(
    readonly path: string,
    private readonly db: Low<StoreData>,
  ) {}

  /** Opens (creating the directory, root-only) and validates the store. */
  static async open(dir: string): Promise<Store> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, STORE_FILE);
    // Compact JSON: tens of thousands of clients are rewritten whole on each save.
    const db = new Low<StoreData>(new DataFile<StoreData>(path, { parse: JSON.parse, stringify: (d) => JSON.stringify(d) }), emptyData());
    try {
      await db.read();
    } catch (error) {
      throw new StoreError(path, (error as Error).message);
    }
    db.data = validate(path, db.data);
    return new Store(path, db);
  }

  /**
   * The daemon's open: a good store is backed up and used; an unusable one
   * (truncated, garbage, not ours) is moved aside and the backup used instead,
   * or nothing when there is no usable backup. Either way the caller reports
   * the recovery and merges in the kernel's client set.
   */
  static async openOrRecover(dir: string, now: Date): Promise<{ store: Store; recovery: StoreRecovery | null }> {
    const path = join(dir, STORE_FILE);
    const backup = join(dir, BACKUP_FILE);
    try {
      const store = await Store.open(dir);
      if (Object.keys(store.data.clients).length > 0) await copyFile(path, backup);
      return { store, recovery: null };
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      const movedTo = `${path}.unusable-${now.toISOString().replace(/[:.]/g, '-')}`;
      await rename(path, movedTo);
      let state: StoreRecovery['backup'] = 'missing';
      try {
        if (await Store.peek(dir, BACKUP_FILE)) {
          await copyFile(backup, path);
          state = 'used';
        }
      } catch {
        state = 'unusable';
      }
      return { store: await Store.open(dir), recovery: { problem: error.detail, movedTo, backup: state } };
    }
  }

  /** Reads the store without creating anything; null when it does not exist. */
  static async peek(dir: string, name = STORE_FILE): Promise<StoreData | null> {
    const path = join(dir, name);
    const file = new DataFile<StoreData>(path, { parse: JSON.parse, stringify: JSON.stringify });
    let data: StoreData | null;
    try {
      data = await file.read();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES') throw new StoreError(path, 'permission denied (run as root)');
      throw new StoreError(path, (error as Error).message);
    }
    return data === null ? null : validate(path, data);
  }

  get data(): Readonly<StoreData> {
    return this.db.data;
  }

  async save(update: (data: StoreData) => void): Promise<void> {
    update(this.db.data);
    await this.db.write();
  }
}

export function assignmentsOf(data: Readonly<StoreData>): Map<string, ClientRecord> {
  return new Map(Object.entries(data.clients));
}
