import type { SeededRandom } from './seeded-random.js';

const WORDS = [
  'river',
  'light',
  'morning',
  'city',
  'signal',
  'quiet',
  'orbit',
  'garden',
  'engine',
  'summer',
  'window',
  'harbor',
  'bright',
  'moment',
  'journey',
  'stone',
  'market',
  'ocean',
  'wild',
  'camera',
  'story',
  'forest',
  'rhythm',
  'sunset',
  'bridge',
  'silver',
  'coffee',
  'mountain',
  'street',
  'echo',
  'winter',
  'paper',
  'golden',
  'storm',
  'meadow',
  'neon',
  'travel',
  'kitchen',
  'music',
  'shadow',
  'canvas',
  'island',
  'spark',
  'valley',
  'rocket',
  'lantern',
  'desert',
  'cloud',
] as const;

export function words(random: SeededRandom, count: number): string[] {
  return Array.from({ length: count }, () => random.pick(WORDS));
}

/** A capitalised sentence of `count` words with a full stop. */
export function sentence(random: SeededRandom, count: number): string {
  const text = words(random, count).join(' ');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

export function hashtag(random: SeededRandom): string {
  return `#${random.pick(WORDS)}${random.pick(WORDS)}`;
}

/**
 * A value that satisfies a (simple) JSON schema, as structured outputs promise: objects get
 * every property, arrays three items, strings a short sentence (or a hashtag when the property
 * name says so), enums their first value.
 */
export function valueForSchema(schema: unknown, random: SeededRandom, name = ''): unknown {
  if (typeof schema !== 'object' || schema === null) return sentence(random, 6);
  const node = schema as Record<string, unknown>;
  if (Array.isArray(node.enum) && node.enum.length) return node.enum[0];
  if ('const' in node) return node.const;
  const type = Array.isArray(node.type) ? node.type.find((item) => item !== 'null') : node.type;
  switch (type) {
    case 'object': {
      const properties = (node.properties ?? {}) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(properties).map(([key, inner]) => [key, valueForSchema(inner, random, key)]));
    }
    case 'array': {
      const count = Math.max(typeof node.minItems === 'number' ? node.minItems : 0, Math.min(3, typeof node.maxItems === 'number' ? node.maxItems : 3));
      return Array.from({ length: count }, () => valueForSchema(node.items, random, name));
    }
    case 'integer':
      return random.integer(typeof node.minimum === 'number' ? node.minimum : 1, typeof node.maximum === 'number' ? node.maximum : 100);
    case 'number':
      return Math.round(random.between(typeof node.minimum === 'number' ? node.minimum : 0, typeof node.maximum === 'number' ? node.maximum : 1) * 1000) / 1000;
    case 'boolean':
      return random.next() < 0.5;
    case 'null':
      return null;
    default:
      return /hashtag|tag/i.test(name) ? hashtag(random) : sentence(random, /title/i.test(name) ? 4 : 12);
  }
}
