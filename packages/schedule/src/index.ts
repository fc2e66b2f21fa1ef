export {
  MAX_FREQUENCY_MINUTES,
  MIN_FREQUENCY_MINUTES,
  type NormalisedSchedule,
  type ParseScheduleResult,
  parseSchedule,
  type ScheduleFrequency,
  type ScheduleProblem,
  type ScheduleWindow,
  WEEKDAYS,
  type Weekday,
} from './parse-schedule.js';
export {
  JITTER_MAX_MS,
  JITTER_SLOT_FRACTION,
  PLAN_HORIZON_DAYS,
  type PlanNextOptions,
  type PlannedOccurrence,
  type PlanOccurrencesOptions,
  planNext,
  planOccurrences,
} from './plan.js';
export {
  type CalendarPeriod,
  calendarCovers,
  isSchoolDay,
  type ParseCalendarResult,
  parseCalendar,
  type SchoolCalendar,
} from './school-calendar.js';
export { stableFraction } from './stable-fraction.js';
export { SCHEDULE_TIMEZONE } from './wall-clock.js';
