/* at_cli.h - the subcommands of the attune binary. Each takes the arguments
 * after its name (argv[0] is the subcommand's name), prints its own --help,
 * and returns the process exit code (0 ok, 1 failure, 2 usage error). */
#ifndef AT_CLI_H
#define AT_CLI_H

int at_cli_serve(int argc, char **argv);
int at_cli_load(int argc, char **argv);
int at_cli_import(int argc, char **argv);
int at_cli_replay(int argc, char **argv);
int at_cli_check_config(int argc, char **argv);
int at_cli_eval(int argc, char **argv);

#endif
