/** The upstream providers behind the AI and metadata steps. */
export const PROVIDERS = ['youtube', 'openai', 'stability', 'elevenlabs'] as const;

export type ProviderName = (typeof PROVIDERS)[number];

/** The variable that holds each provider's key, for messages that say what to fix. */
export const API_KEY_VARIABLES: Readonly<Record<ProviderName, string>> = {
  youtube: 'YOUTUBE_API_KEY',
  openai: 'OPENAI_API_KEY',
  stability: 'STABILITY_API_KEY',
  elevenlabs: 'ELEVENLABS_API_KEY',
};
