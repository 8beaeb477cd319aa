// The tool session (src/system/tool-session.ts): questions to one interactive
// tool kept running, each answer ended by the marker request's known line.
// A scripted process stands in for the tool; the real `ipset -` is asked in
// the namespace suites (self-repair) and by the fake kernel's ipsetSession.

import { describe, expect, test } from '@jest/globals';
import type { Process, RunResult, Runner, SessionSpec, SpawnOptions } from '../../src/system/exec.js';
import { ToolSession } from '../../src/system/tool-session.js';
import { FakeProcess } from '../helpers/fake-kernel/processes.js';
import { ManualClock } from '../helpers/manual-clock.js';

const SPEC: SessionSpec = { argv: ['tool', '-'], markerRequest: 'version', marker: /^tool v\d+$/, prompt: 'tool> ' };

/** Starts scripted tools: each answers a request line by what `script` says (lines on stdout, on stderr, or nothing). */
class ScriptedTools implements Runner {
  readonly started: FakeProcess[] = [];

  constructor(
    private readonly script: (request: string, tool: FakeProcess) => void,
    /** A tool that hangs: it answers nothing, not even the marker. */
    private readonly hangs = false,
  ) {}

  run(): Promise<RunResult> {
    throw new Error('a session runs no one-shot command');
  }

  spawn(argv: readonly string[], options?: SpawnOptions): Process {
    const tool = new FakeProcess(argv, options ?? {});
    this.started.push(tool);
    tool.onWrite((text) => {
      if (this.hangs) return;
      for (const line of text.split('\n').filter(Boolean)) {
        if (line === 'version') tool.print('tool> tool> tool v7');
        else this.script(line, tool);
      }
    });
    return tool;
  }
}

/** Lets the questions queued reach the tool (they wait for the one before them). */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const lists = (request: string, tool: FakeProcess): void => {
  if (request === 'list') {
    tool.print('tool> Name: a');
    tool.print('References: 1');
  }
};

describe('ToolSession', () => {
  test('answers each question with the lines before the marker, prompts stripped, from one process', async () => {
    const tools = new ScriptedTools(lists);
    const session = new ToolSession(tools, SPEC, new ManualClock());
    // Asked together: the second waits for the first's answer.
    const [first, second, empty] = await Promise.all([session.ask('list'), session.ask('list'), session.ask('nothing')]);
    expect(first).toBe('Name: a\nReferences: 1\n');
    expect(second).toBe(first);
    expect(empty).toBe('');
    expect(tools.started).toHaveLength(1);
    expect(tools.started[0]?.written).toEqual(['list\nversion\n', 'list\nversion\n', 'nothing\nversion\n']);
    session.close();
  });

  test('a tool that does not answer in time is stopped and the question fails; the next question starts a new one', async () => {
    const clock = new ManualClock();
    const mute = new ScriptedTools(lists, true);
    const session = new ToolSession(mute, SPEC, clock, 2000);
    const late = session.ask('list');
    await settled();
    clock.advance(1999);
    await settled();
    expect(mute.started[0]?.alive).toBe(true);
    clock.advance(1);
    await expect(late).rejects.toThrow(/no answer to "list" within 2000 ms/);
    expect(mute.started[0]?.alive).toBe(false);
    const again = session.ask('list');
    await settled();
    expect(mute.started).toHaveLength(2);
    clock.advance(2000);
    await expect(again).rejects.toThrow(/no answer/);
    session.close();
  });

  test('a tool that ends fails the question waiting, with what it said; the next question starts it again', async () => {
    let dies = true;
    const tools = new ScriptedTools((request, tool) => {
      if (dies) {
        tool.printError('tool: kernel error');
        tool.exit(1);
      } else lists(request, tool);
    });
    const session = new ToolSession(tools, SPEC, new ManualClock());
    await expect(session.ask('list')).rejects.toThrow(/tool - failed \(exit 1\): the session ended/);
    dies = false;
    expect(await session.ask('list')).toBe('Name: a\nReferences: 1\n');
    expect(tools.started).toHaveLength(2);
    expect(session.starts).toBe(2);
    session.close();
  });

  test('an error printed before the marker fails that question only; the tool keeps running', async () => {
    const tools = new ScriptedTools((request, tool) => {
      if (request === 'bad') tool.printError('tool: The set with the given name does not exist');
      else lists(request, tool);
    });
    const session = new ToolSession(tools, SPEC, new ManualClock());
    await expect(session.ask('bad')).rejects.toThrow(/The set with the given name does not exist/);
    expect(await session.ask('list')).toBe('Name: a\nReferences: 1\n');
    expect(tools.started).toHaveLength(1);
    session.close();
  });

  test('told several commands: run in order, one pipe write; with an error marker, a complaint on stderr read after the marker’s answer on stdout still fails them (the two pipes are read apart)', async () => {
    const spec: SessionSpec = { ...SPEC, errorMarkerRequest: 'complain', errorMarker: /^tool: no such command: complain$/ };
    const done: string[] = [];
    // stderr's lines reach us only after the marker's answer on stdout (held until then), as two pipes may be read.
    let held: string[] = [];
    const tools = new ScriptedTools((request) => {
      done.push(request);
      if (request === 'add bad') held.push('tool: Kernel error received: Cannot allocate memory');
      if (request === 'complain') held.push('tool: no such command: complain');
    });
    const spawn = tools.spawn.bind(tools);
    let tool: FakeProcess | null = null;
    tools.spawn = (argv, options) => {
      tool = spawn(argv, {
        ...options,
        onLine: (line) => {
          options?.onLine?.(line);
          if (/tool v7$/.test(line)) {
            const late = held;
            held = [];
            queueMicrotask(() => {
              for (const complaint of late) tool?.printError(complaint);
            });
          }
        },
      }) as FakeProcess;
      return tool;
    };
    const session = new ToolSession(tools, spec, new ManualClock());
    expect(await session.tell(['add a', 'del b'])).toBe('');
    await expect(session.tell(['add c', 'add bad'])).rejects.toThrow(/Cannot allocate memory/);
    expect(done).toEqual(['add a', 'del b', 'complain', 'add c', 'add bad', 'complain']);
    expect(tools.started).toHaveLength(1);
    await expect(session.tell(['add d', 'add e\nflush'])).rejects.toThrow(/one line/);
    session.close();
  });

  test('close stops the tool; questions after it fail; a request is one line', async () => {
    const tools = new ScriptedTools(lists);
    const session = new ToolSession(tools, SPEC, new ManualClock());
    await session.ask('list');
    session.close();
    expect(tools.started[0]?.alive).toBe(false);
    await expect(session.ask('list')).rejects.toThrow(/closed/);
    await expect(new ToolSession(tools, SPEC, new ManualClock()).ask('list\nflush')).rejects.toThrow(/one line/);
  });
});
