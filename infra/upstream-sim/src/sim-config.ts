import { z } from 'zod';
import { parseEnv } from '@clipline/shared';
import { configPatchSchema, type ConfigPatch } from './fault-config.js';

const faultJson = z
  .string()
  .transform((text, context) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      context.addIssue({ code: 'custom', message: `not JSON: ${(error as Error).message}` });
      return z.NEVER;
    }
  })
  .pipe(configPatchSchema);

/** Environment of the standalone simulator (`node infra/upstream-sim/dist/main.js`). */
const simEnvSchema = z.object({
  /** @defaultValue 3900 */
  UPSTREAM_SIM_PORT: z.coerce.number().int().min(0).max(65535).default(3900),
  /** @defaultValue 127.0.0.1 */
  UPSTREAM_SIM_HOST: z.string().min(1).default('127.0.0.1'),
  /** Faults at start, as the JSON `POST /_sim/config` takes, e.g. `{"endpoints":{"openai.chat.completions":{"latency":{"kind":"fixed","ms":100}}}}`. */
  UPSTREAM_SIM_CONFIG: faultJson.optional(),
  UPSTREAM_SIM_SEED: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .default(1),
  /** The key every simulated provider accepts. @defaultValue sim-key */
  UPSTREAM_SIM_API_KEY: z.string().min(1).default('sim-key'),
  /** Directory served under /media/. */
  UPSTREAM_SIM_MEDIA_DIR: z.string().min(1).optional(),
  FFMPEG_PATH: z.string().min(1).default('ffmpeg'),
});

export interface SimSettings {
  port: number;
  host: string;
  config: ConfigPatch | undefined;
  seed: number;
  apiKey: string;
  mediaDir: string | undefined;
  ffmpegPath: string;
}

export function loadSimSettings(source: Record<string, string | undefined>): SimSettings {
  const env = parseEnv(simEnvSchema, source);
  return {
    port: env.UPSTREAM_SIM_PORT,
    host: env.UPSTREAM_SIM_HOST,
    config: env.UPSTREAM_SIM_CONFIG,
    seed: env.UPSTREAM_SIM_SEED,
    apiKey: env.UPSTREAM_SIM_API_KEY,
    mediaDir: env.UPSTREAM_SIM_MEDIA_DIR,
    ffmpegPath: env.FFMPEG_PATH,
  };
}
