// The persisted state (lowdb): client assignments and what must be put back
// on flush. lowdb writes through steno (temp file + rename), so a crash leaves
// either the old or the new file. A store that does not read back as ours is
// an error the operator sees, never silently replaced with an empty one: the
// CLI refuses it; the daemon moves it aside, says so, and starts from the
// backup taken at its last good start (the kernel's client set fills in the
// rest, see core/adopt.ts).
// The daemon is the only writer; the CLI reads it only when no daemon runs.
//
// Changes to a few clients are appended to a journal beside it
// (dispatcher.journal) instead of rewriting every client: at 50,000 clients
// a whole write cost about 130 ms of CPU, one a second while clients arrive.
// The journal names the generation of the store it follows (the store's
// `journal`); a whole write starts the next generation, so a crash between the
// two never replays lines over a newer store. A torn last line (a crash while
// appending) is ignored.

import { appendFile, copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import type { ClientRecord, StoreData, StoredClient } from '../model/state.js';
import { readStore } from '../schema/store.js';

export const STORE_FILE = 'dispatcher.json';
/** A copy of the store as it was at the last start that read it cleanly. */
export const BACKUP_FILE = 'dispatcher.json.bak';
/** The clients changed since the store was last written whole, one line per write. */
export const JOURNAL_FILE = 'dispatcher.journal';

/**
 * The journal holds at most this share of the clients' records (or 1,024,
 * whichever is more) before the store is written whole again: a whole write
 * costs about what that many appended records do.
 */
const JOURNAL_SHARE = 1 / 4;
const JOURNAL_MIN = 1024;

/** A journal line: clients written (null: removed). The first line names the generation: {"generation": N}. */
type JournalLine = Record<string, StoredClient | null>;

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

/**
 * Where a store's writes take the clients from once their owner hands them
 * over (Store.takeClientsFrom); null: from its data, as read.
 */
interface ClientSource {
  current: (() => Readonly<Record<string, StoredClient>>) | null;
}

export class Store {
  /** Writes and appends, one after another: a line is never appended to a journal a whole write is replacing. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly db: Low<StoreData>,
    /** Client records in the journal; null: no journal follows this generation yet (the first append starts one). */
    private journalRecords: number | null,
    private readonly clientSource: ClientSource,
  ) {}

  /** Opens (creating the directory, root-only) and validates the store. */
  static async open(dir: string): Promise<Store> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, STORE_FILE);
    // Compact JSON: tens of thousands of clients are rewritten whole on each save.
    const source: ClientSource = { current: null };
    const stringify = (d: StoreData): string => JSON.stringify(source.current ? { ...d, clients: source.current() } : d);
    const db = new Low<StoreData>(new DataFile<StoreData>(path, { parse: JSON.parse, stringify }), emptyData());
    let records: number | null;
    try {
      // The journal before the store: see readJournal.
      const journal = await readJournal(join(dir, JOURNAL_FILE));
      await db.read();
      records = replayJournal(journal, db.data);
    } catch (error) {
      throw new StoreError(path, (error as Error).message);
    }
    db.data = validate(path, db.data);
    return new Store(path, db, records, source);
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
      const stamp = `unusable-${now.toISOString().replace(/[:.]/g, '-')}`;
      const movedTo = `${path}.${stamp}`;
      await rename(path, movedTo);
      // The journal follows the store moved aside (or is what did not read back): aside with it.
      await rename(join(dir, JOURNAL_FILE), join(dir, `${JOURNAL_FILE}.${stamp}`)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
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
      // The backup is a whole write of its own: only the store has a journal (read first: see readJournal).
      const journal = name === STORE_FILE ? await readJournal(join(dir, JOURNAL_FILE)) : null;
      data = await file.read();
      if (data !== null) replayJournal(journal, data);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES') throw new StoreError(path, 'permission denied (run as root)');
      throw new StoreError(path, (error as Error).message);
    }
    return data === null ? null : validate(path, data);
  }

  /** The data; its clients are the ones read at open, and none once they were handed over (takeClientsFrom). */
  get data(): Readonly<StoreData> {
    return this.db.data;
  }

  /**
   * From now on every write takes the clients from `source`, called as it
   * writes, and the clients read at open are let go: the daemon holds its
   * clients in its own form (records, and apart from them when each was
   * seen), and a copy in the store's form held 19 MB more RSS at 50,000
   * clients (137 against 118 MB, one 5-minute window each).
   */
  takeClientsFrom(source: () => Readonly<Record<string, StoredClient>>): void {
    this.clientSource.current = source;
    this.db.data.clients = {};
  }

  /** Changes the data and writes it whole; the journal starts afresh (its next generation). */
  save(update: (data: StoreData) => void): Promise<void> {
    update(this.db.data);
    return this.enqueue(async () => {
      this.db.data.journal = (this.db.data.journal ?? 0) + 1;
      await this.db.write();
      // Whole before the journal is replaced: a crash in between leaves a journal of an older generation, ignored.
      await this.startJournal();
    });
  }

  /** Whether `records` more client records fit in the journal of a store of `clients` clients; if not, the clients are written whole. */
  journalHolds(records: number, clients: number): boolean {
    return (this.journalRecords ?? 0) + records <= Math.max(JOURNAL_MIN, clients * JOURNAL_SHARE);
  }

  /** These clients written (null: removed), appended to the journal as one line. */
  appendClients(changes: ReadonlyMap<string, StoredClient | null>): Promise<void> {
    const clients = this.db.data.clients;
    const line: JournalLine = {};
    for (const [ip, record] of changes) {
      line[ip] = record;
      // Handed over, the clients are the source's: the data holds none.
      if (this.clientSource.current) continue;
      if (record === null) delete clients[ip];
      else clients[ip] = record;
    }
    const text = `${JSON.stringify(line)}\n`;
    return this.enqueue(async () => {
      if (this.journalRecords === null) await this.startJournal();
      await appendFile(this.journalPath, text, { mode: 0o600 });
      this.journalRecords = (this.journalRecords ?? 0) + changes.size;
    });
  }

  private get journalPath(): string {
    return join(dirname(this.path), JOURNAL_FILE);
  }

  /** An empty journal that follows the store's generation on disk (replacing any other at once). */
  private async startJournal(): Promise<void> {
    await writeFile(`${this.journalPath}.tmp`, `${JSON.stringify({ generation: this.db.data.journal ?? 0 })}\n`, { mode: 0o600 });
    await rename(`${this.journalPath}.tmp`, this.journalPath);
    this.journalRecords = 0;
  }

  private enqueue(write: () => Promise<void>): Promise<void> {
    const done = this.queue.then(write);
    this.queue = done.catch(() => undefined);
    return done;
  }
}

/**
 * The journal's text; null when there is none. Read before the store: the
 * daemon writes a new store before it starts the next journal, so a journal
 * read first either follows the store read after it or is of an older
 * generation (and the store holds its lines). Read the other way round, a new
 * journal could be paired with the old store, and the old journal's lines lost.
 */
async function readJournal(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Applies the journal's lines to `data` when it follows this store's
 * generation: how many client records it held; null when there is no such
 * journal. A line that does not read back is an error, but for the last
 * (torn by a crash while appending).
 */
function replayJournal(text: string | null, data: StoreData | null): number | null {
  if (text === null) return null;
  const lines = text.split('\n');
  const header = parseLine(lines[0] ?? '');
  if (data === null || typeof data.clients !== 'object' || data.clients === null || header === null || header.generation !== (data.journal ?? 0)) return null;
  let records = 0;
  for (const [i, text] of lines.entries()) {
    if (i === 0 || text === '') continue;
    const line = parseLine(text);
    if (line === null) {
      // Only the last line can be torn: every line is appended with its newline in one write.
      if (i === lines.length - 1) break;
      throw new Error(`${JOURNAL_FILE} line ${i + 1} does not read back`);
    }
    for (const [ip, record] of Object.entries(line as JournalLine)) {
      records += 1;
      if (record === null) delete data.clients[ip];
      else data.clients[ip] = record;
    }
  }
  return records;
}

function parseLine(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The stored clients as the reconciler holds them: their records, and apart from them when each was last seen (model/state.ts LastSeen). */
export function clientsOf(data: Readonly<StoreData>): { readonly assignments: Map<string, ClientRecord>; readonly lastSeen: Map<string, number> } {
  const assignments = new Map<string, ClientRecord>();
  const lastSeen = new Map<string, number>();
  for (const [ip, { lastSeen: seen, ...record }] of Object.entries(data.clients)) {
    assignments.set(ip, record);
    lastSeen.set(ip, seen);
  }
  return { assignments, lastSeen };
}
