import { Module } from '@nestjs/common';
import { AgentGatewayModule, AgentsCoreModule } from '../agents/agents.module.js';
import { AgreementsCoreModule } from '../agreements/agreements-core.module.js';
import { DeliveriesController } from '../deliveries/deliveries.controller.js';
import { DeliveriesProcessor } from '../deliveries/deliveries.processor.js';
import { DeliveryService } from '../deliveries/delivery.service.js';
import { DeliveryQueue } from '../deliveries/delivery-queue.js';
import { ResultStore } from '../results/result-store.js';
import { RunDispatcher } from './run-dispatcher.js';
import { RunJournal } from './run-journal.js';
import { RunLifecycle } from './run-lifecycle.js';
import { RunMessages } from './run-messages.js';
import { RunPipeline } from './run-pipeline.js';
import { RunQueue } from './run-queue.js';
import { RunSweeper } from './run-sweeper.js';
import { RunsController } from './runs.controller.js';
import { RunsProcessor } from './runs.processor.js';
import { RunsRepository } from './runs.repository.js';
import { RunsService } from './runs.service.js';
import { SchedulerService } from './scheduler.service.js';
import { SnapshotPrebuilds } from './snapshot-prebuilds.js';

const CORE = [
  ResultStore,
  DeliveryQueue,
  DeliveryService,
  RunsRepository,
  RunQueue,
  RunJournal,
  SchedulerService,
  RunLifecycle,
  RunDispatcher,
  RunsService,
  SnapshotPrebuilds,
];

/** Runs, schedules and dispatch: what every role that touches runs needs. */
@Module({
  imports: [AgentsCoreModule, AgreementsCoreModule],
  providers: CORE,
  exports: [...CORE, AgentsCoreModule, AgreementsCoreModule],
})
export class RunsCoreModule {}

/** The runs and schedules API (api role). */
@Module({ imports: [RunsCoreModule], controllers: [RunsController, DeliveriesController] })
export class RunsApiModule {}

/** What agents say about jobs (gateway role). */
@Module({ imports: [RunsCoreModule, AgentsCoreModule, AgentGatewayModule], providers: [RunMessages] })
export class RunsGatewayModule {}

/** Timers, sweep, processing (worker role). */
@Module({
  imports: [RunsCoreModule],
  providers: [RunsProcessor, RunSweeper, RunPipeline, DeliveriesProcessor],
})
export class RunsWorkerModule {}
