// json_fields.h — the struct <-> JSON-object mapping shared by the option and config structs
// (train, workflow and reproduce options, the QAT configuration): one X-macro list of field
// names, FIELDS(X) expanding X(name) per field, drives writing every field and reading the
// fields present (absent ones keep their values). With a label, unknown keys are an error
// naming the key. Range checks stay with the command that owns the struct.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

#define PFQ_JSON_FIELD_WRITE_(f) pfq_json_[#f] = pfq_obj_.f;
#define PFQ_JSON_FIELD_KNOWN_(f) pfq_known_ = pfq_known_ || pfq_key_ == #f;
#define PFQ_JSON_FIELD_READ_(f) \
  if (pfq_json_.contains(#f)) pfq_json_.at(#f).get_to(pfq_obj_.f);

// j = {every field of obj}
#define PFQ_JSON_WRITE_FIELDS(j, obj, FIELDS) \
  do {                                        \
    nlohmann::json& pfq_json_ = (j);          \
    const auto& pfq_obj_ = (obj);             \
    pfq_json_ = nlohmann::json::object();     \
    FIELDS(PFQ_JSON_FIELD_WRITE_)             \
  } while (0)

// obj.f = j[f] for every field present. `what` (a string, or nullptr to accept unknown keys, as
// for records of older versions) labels the errors: not an object, unknown key.
#define PFQ_JSON_READ_FIELDS(j, obj, FIELDS, what)                                                  \
  do {                                                                                              \
    const nlohmann::json& pfq_json_ = (j);                                                          \
    auto& pfq_obj_ = (obj);                                                                         \
    const char* pfq_what_ = (what);                                                                 \
    if (pfq_what_ != nullptr) {                                                                     \
      PFQ_CHECK(pfq_json_.is_object(), pfq_what_, ": expected a JSON object, got ", pfq_json_.type_name()); \
      for (auto pfq_it_ = pfq_json_.begin(); pfq_it_ != pfq_json_.end(); ++pfq_it_) {               \
        const std::string& pfq_key_ = pfq_it_.key();                                                \
        bool pfq_known_ = false;                                                                    \
        FIELDS(PFQ_JSON_FIELD_KNOWN_)                                                               \
        PFQ_CHECK(pfq_known_, pfq_what_, ": unknown key '", pfq_key_, "'");                         \
      }                                                                                             \
    }                                                                                               \
    FIELDS(PFQ_JSON_FIELD_READ_)                                                                    \
  } while (0)
