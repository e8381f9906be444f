/* shape operators (see ops.h). */
#include "compiler/ops/ops.h"

const OpDef *const ops_shape[] = {NULL};
