// The problems a config text is refused with (a test of what the verifier says).

import { expect } from '@jest/globals';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/model/errors.js';

/** The problems `text` is refused with; throws when it is accepted. */
export function problemsOf(text: string): { field: string; problem: string; fix: string }[] {
  try {
    parseConfig(text, 'test.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  throw new Error('config was accepted');
}
