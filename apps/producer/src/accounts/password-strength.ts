/**
 * Password strength by zxcvbn-ts (a maintained estimator: dictionaries, keyboard patterns, l33t,
 * dates, repeats). It costs 10-30 ms of CPU per check, so it runs in a worker thread
 * (strength-pool.ts), never on the HTTP event loop; this module is what the thread loads.
 */
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as english from '@zxcvbn-ts/language-en';

export interface StrengthVerdict {
  /** 0 (guessable in a few tries) … 4 (very unguessable). */
  score: number;
  warning: string | null;
  suggestions: string[];
}

let factory: ZxcvbnFactory | undefined;

export function passwordStrength(input: { password: string; userInputs: string[] }): StrengthVerdict {
  factory ??= new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...english.dictionary },
    graphs: common.adjacencyGraphs,
    translations: english.translations,
  });
  const result = factory.check(input.password, input.userInputs);
  return { score: result.score, warning: result.feedback.warning || null, suggestions: result.feedback.suggestions };
}
