/* kdcc: the command line. */
#include "compiler/cli/cli.h"

#include <string.h>

static void help(void)
{
    printf("kdcc %s: compile ONNX models to dependency-free C99\n"
           "\n"
           "usage:\n"
           "  kdcc MODEL -o OUT [options]   compile MODEL to OUT.c and OUT.h (kdcc compile --help for options)\n"
           "  kdcc MODEL --report           per node MACs, bytes and arena offsets; flash, arena and its lower bound\n"
           "  kdcc print MODEL              print MODEL in the ONNX textual syntax\n"
           "  kdcc distill --teacher T.onnx --student S.onnx --data X [--labels Y] -o OUT.c\n"
           "                                distil a student from teachers (kdcc distill --help)\n"
           "  kdcc train --model M.onnx --data X --labels Y --onnx OUT.onnx   train on labels\n"
           "  kdcc eval MODEL --data X --labels Y   accuracy and confusion matrix\n"
           "  kdcc soft-targets --teacher T.onnx --data X --shard I/N -o PART.npy   teacher logits, sharded\n"
           "  kdcc info MODEL [options]     inputs, outputs, operators (supported?), parameters, MACs, flash, arena\n"
           "  kdcc dot MODEL [-o FILE.dot]  the graph in Graphviz dot (render with: dot -Tsvg)\n"
           "  kdcc ops [--markdown|--tsv]   the operators kdcc supports (fold, gradient, view)\n"
           "  kdcc --version                print the version\n"
           "  kdcc COMMAND --help           the options of COMMAND (compile, print, distill, train, eval,\n"
           "                                soft-targets, info, dot, ops)\n"
           "\n"
           "MODEL is a binary .onnx file or a model in the ONNX textual syntax (.txt, .onnxtxt).\n"
           "Exit status: 0 success, 1 error (one line on stderr naming file, node and operator), 2 usage.\n",
           KDCC_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        help();
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        help();
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("kdcc %s\n", KDCC_VERSION);
        return 0;
    }
    if (strcmp(cmd, "print") == 0)
        return cmd_print(argc - 1, argv + 1);
    if (strcmp(cmd, "distill") == 0)
        return cmd_distill(argc - 1, argv + 1);
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0)
        return cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "soft-targets") == 0)
        return cmd_soft_targets(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0)
        return cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "dot") == 0)
        return cmd_dot(argc - 1, argv + 1);
    if (strcmp(cmd, "ops") == 0)
        return cmd_ops(argc - 1, argv + 1);
    if (strcmp(cmd, "compile") == 0)
        return cmd_compile(argc - 1, argv + 1);
    return cmd_compile(argc, argv);
}
