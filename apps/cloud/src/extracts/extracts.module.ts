import { Module } from '@nestjs/common';
import { ExtractsController } from './extracts.controller.js';
import { ExtractsRepository } from './extracts.repository.js';
import { ExtractsService } from './extracts.service.js';

@Module({
  controllers: [ExtractsController],
  providers: [ExtractsRepository, ExtractsService],
  exports: [ExtractsService, ExtractsRepository],
})
export class ExtractsModule {}
