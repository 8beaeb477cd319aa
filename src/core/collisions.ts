// Collisions between a config and what other software already keeps in the
// kernel (pure). The config check alone cannot see them: a rule priority,
// routing table or mark bit is only "taken" on this gateway. Found at start
// and reload, they refuse the config like any other config error (exit 2,
// nothing changed), naming the field to move and the foreign object in the way.
// Our own objects are told apart by the route protocol stamped on them and by
// our chain prefix, so a restart over our own programming is never refused.
// This module checks the shared part (ip rules, routes); the packet filter's
// part is the backend's (NetfilterBackend.collisions).

import type { Config } from '../model/config.js';
import type { ConfigProblem } from '../model/errors.js';
import type { RoutingState } from '../model/kernel.js';
import { ids, inOurPriorityRange, isOurTable, ROUTE_PROTOCOL } from './contract.js';
import { hex } from './marks.js';

const FULL_MASK = 0xffffffff;

export function routingCollisions(config: Config, observed: Pick<RoutingState, 'rules' | 'routes'>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const ourMask = config.marks.mask >>> 0;
  const { tables, priorities } = ids(config);
  const ourTables = `our tables ${tables.first}–${tables.last}`;
  const moveTables = 'move tables.base to a free block of 100 table ids';
  const moveMask = 'choose a marks.mask whose bits that software does not use';
  const foreignRules = observed.rules.filter((r) => r.protocol !== String(ROUTE_PROTOCOL));
  for (const rule of foreignRules) {
    const what = `ip rule ${rule.priority} (from ${rule.src}${rule.fwmark !== undefined ? ` fwmark ${hex(rule.fwmark)}/${hex(rule.fwmask ?? FULL_MASK)}` : ''} lookup ${rule.table})`;
    if (rule.priority !== 0 && rule.priority < 32766 && inOurPriorityRange(config, rule.priority)) {
      problems.push({ field: 'rules.priority', problem: `${what} of other software sits in our priorities ${priorities.first}–${priorities.last}`, fix: 'move rules.priority to a free block of 100 priorities' });
    }
    if (isOurTable(config, rule.table)) {
      problems.push({ field: 'tables.base', problem: `${what} of other software looks up table ${rule.table}, inside ${ourTables}`, fix: moveTables });
    }
    if (rule.fwmark !== undefined && ((rule.fwmask ?? FULL_MASK) & ourMask) !== 0) {
      problems.push({ field: 'marks.mask', problem: `${what} of other software tests mark bits ${hex(((rule.fwmask ?? FULL_MASK) & ourMask) >>> 0)} inside marks.mask ${hex(ourMask)}`, fix: moveMask });
    }
  }
  const foreignTables = new Set(observed.routes.filter((r) => isOurTable(config, r.table) && r.protocol !== String(ROUTE_PROTOCOL)).map((r) => r.table));
  for (const table of foreignTables) {
    problems.push({ field: 'tables.base', problem: `routing table ${table}, inside ${ourTables}, holds routes of other software`, fix: moveTables });
  }
  return problems;
}
