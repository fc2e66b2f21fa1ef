import { Module } from '@nestjs/common';
import { ExtractPreviewService } from './extract-preview.service.js';
import { ExtractsController } from './extracts.controller.js';
import { ExtractsRepository } from './extracts.repository.js';
import { ExtractsService } from './extracts.service.js';

@Module({
  controllers: [ExtractsController],
  providers: [ExtractsRepository, ExtractsService, ExtractPreviewService],
  exports: [ExtractsService, ExtractsRepository],
})
export class ExtractsModule {}
