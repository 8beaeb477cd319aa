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
import { DISPATCHER_BIN } from '../lab/harness.js';
import { inNamespace } from '../lab/topology.js';
import type { BenchContext } from './context.js';
import { figure, type Figure, type ScenarioResult } from './report.js';
import { median } from './stats.js';

const TARGET_MS = 150;

async function timed(lab: Lab, argv: readonly string[]): Promise<number> {
  const started = performance.now();
  await lab.runner.run(argv);
  return performance.now() - started;
}

export async function cliStart(ctx: BenchContext): Promise<ScenarioResult> {
  const runs = ctx.quick ? 5 : 20;
  const lab = await Lab.create({ clients: 1, prefix: 'dspc', config: { schedule: '0 0 * * * *' } });
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
    /** Name, command, and what must run (untimed) before each sample: a release needs an assignment to release. */
    const commands: readonly (readonly [string, readonly string[], (readonly string[])?])[] = [
      ['--version', cli(['--version'])],
      ['pools', cli(['pools'])],
      ['status', cli(['status'])],
      // As an operator types it: the CLI reads the socket from the config.
      ['status --config', cli(['status'], ['--config', config])],
      ['assign', assign],
      ['release', cli(['release', client.ip]), assign],
      ['hook', cli(hook)],
    ];
    const baselineArgv = inNamespace(gw, [process.execPath, '-e', '0']);
    // One untimed round: the page cache and the daemon's first answers are warm.
    await timed(lab, baselineArgv);
    for (const [, argv, before] of commands) {
      if (before) await timed(lab, before);
      await timed(lab, argv);
    }

    const figures: Figure[] = [];
    const notes: string[] = [];
    for (const [name, argv, before] of commands) {
      const ours: number[] = [];
      const node: number[] = [];
      for (let i = 0; i < runs; i++) {
        if (before) await timed(lab, before);
        ours.push(await timed(lab, argv));
        node.push(await timed(lab, baselineArgv));
      }
      const value = median(ours);
      const baseline = median(node);
      ctx.log(`${name}: ${value.toFixed(0)} ms (node -e 0: ${baseline.toFixed(0)} ms)`);
      figures.push(figure({ name: `dispatcher ${name}`, unit: 'ms', value, baseline, target: { text: `≤ ${TARGET_MS} ms`, max: TARGET_MS } }));
      notes.push(`${name}: ${(value - baseline).toFixed(0)} ms over Node's own start`);
    }
    return {
      id: 'cli-start',
      title: `CLI start-up: whole command against a running daemon (median of ${runs})`,
      baseline: "Node's own start, `node -e 0`, started the same way (inside the gateway namespace) in turn with ours",
      figures,
      notes: [
        'Commands are given `--socket`, as the lab and the installed ppp hook scripts run them; `status --config` reads the socket from the config file (YAML only, not the schema), as an operator types it.',
        'Each figure is one whole process, from start to exit, including `ip netns exec` and the answer from the daemon; the ratio is below 1 because nothing starts faster than Node itself.',
        ...notes,
      ],
    };
  } finally {
    await lab.destroy();
  }
}
