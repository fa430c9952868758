import { ClipLineApiError } from '../errors.js';
import { CliConfigError } from './cli-config.js';
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, type CliContext } from './cli-context.js';
import { describeError } from './describe-error.js';
import { downloadCommand } from './download-command.js';
import { helpText } from './help.js';
import { keysCommand } from './keys-command.js';
import { statusCommand } from './status-command.js';
import { submitCommand } from './submit-command.js';
import { UsageError } from './usage-error.js';

const COMMANDS: Record<string, (argv: readonly string[], context: CliContext) => Promise<number>> = {
  submit: submitCommand,
  status: statusCommand,
  download: downloadCommand,
  keys: keysCommand,
};

/** Runs one command line and returns the exit code; every failure is reported on stderr. */
export async function runCli(argv: readonly string[], context: CliContext): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined) {
      context.stderr.write(helpText());
      return EXIT_USAGE;
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      context.stdout.write(helpText(rest[0]));
      return EXIT_OK;
    }
    const run = COMMANDS[command];
    if (!run) throw new UsageError(`unknown command "${command}" (submit, status, download or keys)`);
    return await run(rest, context);
  } catch (error) {
    if (context.signal.aborted) return EXIT_INTERRUPTED;
    if (error instanceof UsageError) {
      const hint = error.command ? `clipline ${error.command} --help` : 'clipline --help';
      context.stderr.write(`clipline: ${error.message}\nRun "${hint}" for usage.\n`);
      return EXIT_USAGE;
    }
    if (error instanceof CliConfigError) {
      context.stderr.write(`clipline: ${error.message}\n`);
      return EXIT_USAGE;
    }
    context.stderr.write(`clipline: ${describeError(error)}\n`);
    if (error instanceof ClipLineApiError) {
      for (const item of error.problem.errors ?? []) context.stderr.write(`  ${item.path}: ${item.message}\n`);
    }
    return EXIT_FAILURE;
  }
}
