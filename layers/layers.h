/// \file
/// layers.h — umbrella include for the Module system and the layers of layers/.
/// Model builders live in layers/models/ (registry.h); summaries in layers/summary.h.
#pragma once
#include "layers/basic.h"
#include "layers/batchnorm.h"
#include "layers/conv.h"
#include "layers/module.h"
#include "layers/sequential.h"
