export { createUpstreamSimulator, type UpstreamSimulator, type UpstreamSimulatorOptions } from './simulator.js';
export {
  SIM_ENDPOINTS,
  SimConfigError,
  configPatchSchema,
  parseConfigPatch,
  type ConfigPatch,
  type EndpointFaults,
  type Latency,
  type SimEndpoint,
  type SimulatorConfig,
} from './fault-config.js';
export type { EndpointStats, RequestRecord, SimulatorStats } from './request-stats.js';
export type { SimProvider } from './endpoints/endpoint.js';
