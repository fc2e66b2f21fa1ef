export { AGENT_VERSION, AgentConnection } from './connection.js';
export { CredentialStore } from './credentials.js';
export { DataDir } from './data-dir.js';
export { AgentError } from './errors.js';
export { JobRunner } from './jobs.js';
