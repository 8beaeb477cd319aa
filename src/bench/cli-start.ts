// Scenario: how long a CLI command takes from start to exit against a running
// daemon, against Node's own start (`node -e 0`) in the same run. pppd's
// ip-down hook runs `dispatcher hook`, so its start-up is part of failover
// time; operators run pools/status/assign/release by hand.
//
// Each sample is one whole process, started the way the lab starts the CLI
// (`ip netns exec GW node bin/dispatcher …`); the baseline is started the same
// way, in turn with it (ours, baseline, ours, …), so both carry the same
// wrapper and the same machine load. Commands are given --socket, as the lab
// and the installed ppp hook script call them; `status` is measured once
// more with --config alone, as an operator types it (the CLI then reads the
// socket from the config, config/peek.ts).

import { Lab } from '../lab/lab.js';
import { DISPATCHER_BIN, waitFor } from '../lab/harness.js';
import { inNamespace } from '../lab/topology.js';
import type { BenchContext } from './context.js';
import { figure, type Figure, type ScenarioResult } from './report.js';
import { median } from './stats.js';

const TARGET_MS = 150;

interface Measured {
  readonly name: string;
  readonly argv: readonly string[];
  /** Run (untimed) before each sample. */
  readonly before?: readonly string[];
  /**
   * The reconcile run the command sets off: answered after it (assign and
   * release report what was applied; its duration, from the daemon's own
   * report, is taken off) or before it (hook; the next sample waits for it).
   */
  readonly run?: 'answered after' | 'answered before';
}

async function timed(lab: Lab, argv: readonly string[]): Promise<number> {
  const started = performance.now();
  await lab.runner.run(argv);
  return performance.now() - started;
}

export async function cliStart(ctx: BenchContext): Promise<ScenarioResult> {
  const samples = ctx.quick ? 5 : 20;
  const lab = await Lab.create({ clients: 1, tag: 'c', config: { schedule: '0 0 * * * *' } });
  try {
    await lab.start();
    const { gw, uplinks, clients } = lab.topo;
    const uplink = uplinks[0];
    const client = clients[0];
    if (!uplink || !client) throw new Error('the lab has no uplink or no client');
    const { config, state, socket } = lab.files;
    const cli = (args: readonly string[], globals: readonly string[] = ['--config', config, '--state', state, '--socket', socket]): string[] => inNamespace(gw, [process.execPath, DISPATCHER_BIN, ...globals, ...args]);
    // ip-up on a live uplink: the daemon clears any forced verdict and reconciles; nothing moves.
    const hook = ['hook', 'ip-up', uplink.interface, '/dev/ttyS0', '38400', uplink.local, uplink.gateway];
    const assign = cli(['assign', client.ip, uplink.name]);
    const commands: readonly Measured[] = [
      { name: '--version', argv: cli(['--version']) },
      { name: 'pools', argv: cli(['pools']) },
      { name: 'status', argv: cli(['status']) },
      // As an operator types it: the CLI reads the socket from the config.
      { name: 'status --config', argv: cli(['status'], ['--config', config]) },
      { name: 'assign', argv: assign, run: 'answered after' },
      // A release needs an assignment to release.
      { name: 'release', argv: cli(['release', client.ip]), before: assign, run: 'answered after' },
      { name: 'hook', argv: cli(hook), run: 'answered before' },
    ];
    const baselineArgv = inNamespace(gw, [process.execPath, '-e', '0']);
    const runs = async (): Promise<{ count: number; lastMs: number }> => {
      const status = await lab.status();
      return { count: status.runs, lastMs: status.lastRun?.durationMs ?? 0 };
    };
    /** One sample of a command: its start-up and round trip, without the daemon's reconcile run. */
    const sample = async (command: Measured): Promise<number> => {
      if (command.before) await timed(lab, command.before);
      const before = command.run ? await runs() : null;
      const ms = await timed(lab, command.argv);
      if (!before) return ms;
      // The run the command set off must be over before the next sample, or it competes for the 2 cores.
      const after = await waitFor(`the run ${command.name} set off`, 5000, async () => {
        const now = await runs();
        return now.count > before.count ? now : null;
      });
      return command.run === 'answered after' ? ms - after.lastMs : ms;
    };
    // One untimed round: the page cache and the daemon's first answers are warm.
    await timed(lab, baselineArgv);
    for (const command of commands) await sample(command);

    const figures: Figure[] = [];
    const notes: string[] = [];
    for (const command of commands) {
      const ours: number[] = [];
      const node: number[] = [];
      for (let i = 0; i < samples; i++) {
        ours.push(await sample(command));
        node.push(await timed(lab, baselineArgv));
      }
      const value = median(ours);
      const baseline = median(node);
      ctx.log(`${command.name}: ${value.toFixed(0)} ms (node -e 0: ${baseline.toFixed(0)} ms)`);
      figures.push(figure({ name: `dispatcher ${command.name}`, unit: 'ms', value, baseline, target: { text: `≤ ${TARGET_MS} ms`, max: TARGET_MS } }));
      notes.push(`${command.name}: ${(value - baseline).toFixed(0)} ms over Node's own start`);
    }
    return {
      id: 'cli-start',
      title: `CLI start-up: whole command against a running daemon (median of ${samples})`,
      baseline: "Node's own start, `node -e 0`, started the same way (inside the gateway namespace) in turn with ours",
      figures,
      notes: [
        'Commands are given `--socket`, as the lab and the installed ppp hook scripts run them; `status --config` reads the socket from the config file (YAML only, not the schema), as an operator types it.',
        'Each figure is one whole process, from start to exit, including `ip netns exec` and the answer from the daemon; the ratio is below 1 because nothing starts faster than Node itself.',
        "`assign` and `release` are answered after the reconcile run that applies them: that run's duration, as the daemon reports it, is taken off (it is the daemon's work, not the CLI's). `hook` is answered before its run; the next sample waits for that run to end.",
        ...notes,
      ],
    };
  } finally {
    await lab.destroy();
  }
}
