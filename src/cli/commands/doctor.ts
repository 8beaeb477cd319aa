import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { PppHookPaths } from '../../render/ppp-hook.js';
import { configFindings, diagnose, diagnoseHost, EXIT_OF, worst, type Finding } from '../../core/doctor.js';
import { loadBackend } from '../../engine/backend.js';
import { ConfigError } from '../../model/errors.js';
import { gatherFacts, hostFacts } from '../../system/doctor.js';
import { configFor, fromDaemon, printJson, type CliContext } from '../context.js';
import { EXIT_USAGE, Failure } from '../exit.js';

/**
 * What `dispatcher ha render` puts into the notify script when run as this
 * doctor is (the same paths as cli/commands/ha.ts): doctor renders it again
 * to tell whether the one on disk is current.
 */
function notifyPaths(ctx: CliContext, socket: string): PppHookPaths {
  return {
    node: process.execPath,
    dispatcher: realpathSync(fileURLToPath(new URL('../../../bin/dispatcher', import.meta.url))),
    config: resolve(ctx.globals().config),
    socket: resolve(socket),
  };
}

const MARK: Record<Finding['severity'], string> = { ok: 'ok  ', info: 'info', warn: 'WARN', fail: 'FAIL' };

export function registerDoctor(program: Command, ctx: CliContext): void {
  program
    .command('doctor')
    .description('check what the dispatcher needs on this machine and say how to fix each miss (exit 0 ok, 1 warnings, 2 failures)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      if (process.getuid?.() !== 0) throw new Failure('doctor needs root: it reads iptables and ipset and tries kernel features in a scratch network namespace (sudo dispatcher doctor)', EXIT_USAGE);
      let findings: Finding[];
      try {
        const config = await configFor(ctx);
        const running = (await fromDaemon(ctx, { cmd: 'ping' }).catch(() => null)) !== null;
        // Asked apart from the ping: a daemon that answers but fails its status is still running.
        const status = running ? await fromDaemon(ctx, { cmd: 'status' }).catch(() => null) : null;
        // `?? null`: a daemon from before self-repair (or before pairs) answers status without `repairs` (`ha`).
        const repairs = status?.repairs ?? null;
        const pair = config.ha ? { notify: notifyPaths(ctx, config.socket), daemon: status?.ha ?? null } : null;
        const backend = await loadBackend(config);
        const netfilterCollisions = backend.collisions(config, await backend.observe(ctx.runner));
        findings = diagnose(await gatherFacts(ctx.runner, config, running, netfilterCollisions, repairs, pair));
      } catch (error) {
        // A config that does not load is itself the first finding; the host is still checked.
        if (!(error instanceof ConfigError)) throw error;
        findings = [...configFindings(error.problems, ctx.globals().config), ...diagnoseHost(await hostFacts(ctx.runner, 'iptables'), 'iptables')];
      }
      const severity = worst(findings);
      if (options.json) {
        printJson(ctx, { worst: severity, findings });
      } else {
        const lines = findings.map((f) => `${MARK[f.severity]}  ${f.summary}${f.fix && f.severity !== 'ok' ? `\n      fix: ${f.fix}` : ''}`);
        const count = (s: Finding['severity']): number => findings.filter((f) => f.severity === s).length;
        ctx.out(`${lines.join('\n')}\n\n${count('fail')} failures, ${count('warn')} warnings, ${count('ok')} ok\n`);
      }
      ctx.exitCode = EXIT_OF[severity];
    });
}
