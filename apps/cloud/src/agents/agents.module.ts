import { Module } from '@nestjs/common';
import { AgentChannel } from './agent-channel.js';
import { AgentGateway } from './agent-gateway.js';
import { AgentPresence } from './agent-presence.js';
import { AgentsController } from './agents.controller.js';
import { AgentsRepository } from './agents.repository.js';
import { AgentsService } from './agents.service.js';
import { PlatformKeysService } from './platform-keys.service.js';

/** What every role that deals with agents needs: storage, keys, presence. */
@Module({
  providers: [AgentsRepository, PlatformKeysService, AgentPresence, AgentChannel],
  exports: [AgentsRepository, PlatformKeysService, AgentPresence, AgentChannel],
})
export class AgentsCoreModule {}

/** Enrolment and the agents API (api role). */
@Module({ imports: [AgentsCoreModule], controllers: [AgentsController], providers: [AgentsService] })
export class AgentsApiModule {}

/** The agents' WebSocket endpoint (gateway role). */
@Module({ imports: [AgentsCoreModule], providers: [AgentGateway], exports: [AgentGateway] })
export class AgentGatewayModule {}
