/**
 * prmkit's addition to the tfjs-node binding (copied into binding/ and compiled by
 * scripts/setup-native; scripts/native/tfjs-node.patch adds it to binding.gyp and registers it
 * from tfjs_binding.cc).
 *
 * It gives JavaScript TensorFlow's multi-client collective runtime on the binding's own eager
 * context, the one every tfjs tensor lives in:
 *   enableCollectiveOps(serverDef: Uint8Array)      TFE_EnableCollectiveOps (before any tensor)
 *   executeOpAsync(name, attrs, inputIds, nOut)     like executeOp, but TFE_Execute runs on a
 *                                                   libuv worker thread; returns a Promise
 *   checkCollectivePeerHealth(task, timeoutMs)      TFE_CollectiveOpsCheckPeerHealth (Promise)
 *   abortCollectiveOps(message)                     TFE_AbortCollectiveOps with UNAVAILABLE
 *   serverDefFromText(text): Uint8Array             TFE_GetServerDef: TensorFlow's own encoding
 *                                                   of a text-format ServerDef (tests compare
 *                                                   prmkit's protobufjs encoding against it)
 *
 * Why a worker thread: a collective blocks until every peer joins. Run on the JS thread it
 * would freeze the event loop, and with it the peer health checks that must be able to abort
 * it when a peer dies. The op and its inputs are built on the JS thread (TFE_OpAddInput takes
 * its own reference to each input, so disposing the JS tensor meanwhile is safe); only
 * TFE_Execute, which is thread-safe on an eager context, runs on the worker.
 */

#include <node_api.h>

#include <cstring>
#include <string>
#include <vector>

#include "tensorflow/c/c_api.h"
#include "tensorflow/c/c_api_experimental.h"
#include "tensorflow/c/eager/c_api.h"
#include "tensorflow/c/eager/c_api_experimental.h"
#include "tfjs_backend.h"
#include "utils.h"

namespace tfnodejs {

// prmkit's fused decoder ops (binding/prmkit_fused.cc), registered with the binding's exports.
void RegisterPrmkitFused(napi_env env, napi_value exports);

// Defined in tfjs_backend.cc (external linkage there, no header declares it).
void AssignOpAttr(napi_env env, TFE_Op *tfe_op, napi_value attr_value);

// Friend of TFJSBackend (declared in tfjs_backend.h by the patch): reaches its context,
// tensor map and device name.
struct PrmkitCollectives {
  static napi_value OutputInfo(napi_env env, TFJSBackend *backend, TFE_TensorHandle *h) {
    return backend->GenerateOutputTensorInfo(env, h);
  }
  static napi_value EnableCollectiveOps(napi_env env, napi_callback_info info);
  static napi_value ExecuteOpAsync(napi_env env, napi_callback_info info);
  static napi_value CheckPeerHealth(napi_env env, napi_callback_info info);
  static napi_value AbortCollectiveOps(napi_env env, napi_callback_info info);
  static napi_value ServerDefFromText(napi_env env, napi_callback_info info);
};

namespace {

TFJSBackend *Backend(napi_env env) {
  TFJSBackend *backend = nullptr;
  napi_status nstatus =
      napi_get_instance_data(env, reinterpret_cast<void **>(&backend));
  ENSURE_NAPI_OK_RETVAL(env, nstatus, nullptr);
  if (backend == nullptr) NAPI_THROW_ERROR(env, "tfjs binding not initialised");
  return backend;
}

// Rejects or resolves `deferred` from a TF status; error.code carries the TF_Code so JS can
// tell a deadline from an abort.
void Settle(napi_env env, napi_deferred deferred, TF_Code code,
            const std::string &message, napi_value value) {
  if (code == TF_OK) {
    napi_resolve_deferred(env, deferred, value);
    return;
  }
  napi_value msg, err, code_value;
  napi_create_string_utf8(env, message.c_str(), message.size(), &msg);
  napi_create_error(env, nullptr, msg, &err);
  napi_create_int32(env, static_cast<int32_t>(code), &code_value);
  napi_set_named_property(env, err, "tfCode", code_value);
  napi_reject_deferred(env, deferred, err);
}

// --- executeOpAsync --------------------------------------------------------------------

struct ExecuteWork {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  TFE_Op *op = nullptr;
  std::vector<TFE_TensorHandle *> outputs;
  int num_outputs = 0;
  TF_Code code = TF_OK;
  std::string message;
};

void ExecuteOnWorker(napi_env, void *data) {
  auto *w = static_cast<ExecuteWork *>(data);
  TF_Status *status = TF_NewStatus();
  w->num_outputs = static_cast<int>(w->outputs.size());
  TFE_Execute(w->op, w->outputs.data(), &w->num_outputs, status);
  w->code = TF_GetCode(status);
  if (w->code != TF_OK) w->message = TF_Message(status);
  TF_DeleteStatus(status);
}

void ExecuteDone(napi_env env, napi_status, void *data) {
  auto *w = static_cast<ExecuteWork *>(data);
  TFE_DeleteOp(w->op);
  napi_value infos = nullptr;
  if (w->code == TF_OK) {
    TFJSBackend *backend = Backend(env);
    napi_create_array_with_length(env, w->num_outputs, &infos);
    for (int i = 0; i < w->num_outputs; i++) {
      napi_set_element(env, infos, i,
                       PrmkitCollectives::OutputInfo(env, backend, w->outputs[i]));
    }
  }
  Settle(env, w->deferred, w->code, w->message, infos);
  napi_delete_async_work(env, w->work);
  delete w;
}

// --- checkCollectivePeerHealth ---------------------------------------------------------

struct HealthWork {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  TFE_Context *context = nullptr;
  std::string task;
  int64_t timeout_ms = 0;
  TF_Code code = TF_OK;
  std::string message;
};

void HealthOnWorker(napi_env, void *data) {
  auto *w = static_cast<HealthWork *>(data);
  TF_Status *status = TF_NewStatus();
  TFE_CollectiveOpsCheckPeerHealth(w->context, w->task.c_str(), w->timeout_ms, status);
  w->code = TF_GetCode(status);
  if (w->code != TF_OK) w->message = TF_Message(status);
  TF_DeleteStatus(status);
}

void HealthDone(napi_env env, napi_status, void *data) {
  auto *w = static_cast<HealthWork *>(data);
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  Settle(env, w->deferred, w->code, w->message, undefined);
  napi_delete_async_work(env, w->work);
  delete w;
}

napi_value QueueWork(napi_env env, const char *name, napi_async_execute_callback execute,
                     napi_async_complete_callback complete, void *data,
                     napi_async_work *work, napi_deferred *deferred) {
  napi_value promise, resource_name;
  ENSURE_NAPI_OK_RETVAL(env, napi_create_promise(env, deferred, &promise), nullptr);
  ENSURE_NAPI_OK_RETVAL(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name), nullptr);
  ENSURE_NAPI_OK_RETVAL(env, napi_create_async_work(env, nullptr, resource_name, execute, complete, data, work), nullptr);
  ENSURE_NAPI_OK_RETVAL(env, napi_queue_async_work(env, *work), nullptr);
  return promise;
}

}  // namespace

napi_value PrmkitCollectives::EnableCollectiveOps(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  ENSURE_NAPI_OK_RETVAL(env, napi_get_cb_info(env, info, &argc, args, nullptr, nullptr), nullptr);
  TFJSBackend *backend = Backend(env);
  if (backend == nullptr) return nullptr;
  bool is_typed_array = false;
  if (argc < 1 || napi_is_typedarray(env, args[0], &is_typed_array) != napi_ok || !is_typed_array) {
    NAPI_THROW_ERROR(env, "enableCollectiveOps(serverDef): expected the serialized tensorflow.ServerDef as a Uint8Array");
    return nullptr;
  }
  // Enabling replaces the context's local devices (their job becomes the ServerDef's), so
  // handles made before it would point at devices that no longer exist.
  if (!backend->tfe_handle_map_.empty()) {
    NAPI_THROW_ERROR(env,
                     "enableCollectiveOps: %zu tensors already exist; collectives must be "
                     "enabled before the first tensor is created",
                     backend->tfe_handle_map_.size());
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  ENSURE_NAPI_OK_RETVAL(env, napi_get_typedarray_info(env, args[0], &type, &length, &data, nullptr, nullptr), nullptr);
  TF_AutoStatus status;
  TFE_EnableCollectiveOps(backend->tfe_context_, data, length, status.status);
  ENSURE_TF_OK_RETVAL(env, status, nullptr);

  // CreateTensor copies new tensors to `device_name`; point it at the renamed local device.
  TF_DeviceList *devices = TFE_ContextListDevices(backend->tfe_context_, status.status);
  ENSURE_TF_OK_RETVAL(env, status, nullptr);
  std::string cpu, gpu;
  for (int i = 0; i < TF_DeviceListCount(devices); i++) {
    const std::string type_name = TF_DeviceListType(devices, i, status.status);
    const std::string name = TF_DeviceListName(devices, i, status.status);
    if (type_name == "CPU" && cpu.empty()) cpu = name;
    if (type_name == "GPU" && gpu.empty()) gpu = name;
  }
  TF_DeleteDeviceList(devices);
  backend->device_name = backend->is_gpu_device && !gpu.empty() ? gpu : cpu;
  napi_value result;
  napi_create_string_utf8(env, backend->device_name.c_str(), backend->device_name.size(), &result);
  return result;
}

napi_value PrmkitCollectives::ExecuteOpAsync(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  ENSURE_NAPI_OK_RETVAL(env, napi_get_cb_info(env, info, &argc, args, nullptr, nullptr), nullptr);
  if (argc < 4) {
    NAPI_THROW_ERROR(env, "executeOpAsync(name, attrs, inputIds, numOutputs): got %zu args", argc);
    return nullptr;
  }
  ENSURE_VALUE_IS_STRING_RETVAL(env, args[0], nullptr);
  ENSURE_VALUE_IS_ARRAY_RETVAL(env, args[1], nullptr);
  ENSURE_VALUE_IS_ARRAY_RETVAL(env, args[2], nullptr);
  ENSURE_VALUE_IS_NUMBER_RETVAL(env, args[3], nullptr);
  TFJSBackend *backend = Backend(env);
  if (backend == nullptr) return nullptr;

  std::string op_name;
  ENSURE_NAPI_OK_RETVAL(env, GetStringParam(env, args[0], op_name), nullptr);
  TF_AutoStatus status;
  TFE_Op *op = TFE_NewOp(backend->tfe_context_, op_name.c_str(), status.status);
  ENSURE_TF_OK_RETVAL(env, status, nullptr);
  auto fail = [&]() -> napi_value { TFE_DeleteOp(op); return nullptr; };

  uint32_t num_inputs;
  if (napi_get_array_length(env, args[2], &num_inputs) != napi_ok) return fail();
  for (uint32_t i = 0; i < num_inputs; i++) {
    napi_value id_value;
    int32_t id;
    if (napi_get_element(env, args[2], i, &id_value) != napi_ok ||
        napi_get_value_int32(env, id_value, &id) != napi_ok) return fail();
    auto entry = backend->tfe_handle_map_.find(id);
    if (entry == backend->tfe_handle_map_.end()) {
      NAPI_THROW_ERROR(env, "executeOpAsync: input tensor id %d not referenced", id);
      return fail();
    }
    TFE_OpAddInput(op, entry->second, status.status);
    if (!EnsureTFOK(env, status, __FILE__, __LINE__)) return fail();
  }
  uint32_t num_attrs;
  if (napi_get_array_length(env, args[1], &num_attrs) != napi_ok) return fail();
  for (uint32_t i = 0; i < num_attrs; i++) {
    napi_value attr;
    if (napi_get_element(env, args[1], i, &attr) != napi_ok) return fail();
    AssignOpAttr(env, op, attr);
    if (IsExceptionPending(env)) return fail();
  }
  int32_t num_outputs;
  if (napi_get_value_int32(env, args[3], &num_outputs) != napi_ok || num_outputs < 0) return fail();

  auto *w = new ExecuteWork();
  w->op = op;
  w->outputs.assign(num_outputs, nullptr);
  napi_value promise = QueueWork(env, "prmkit.executeOpAsync", ExecuteOnWorker, ExecuteDone, w, &w->work, &w->deferred);
  if (promise == nullptr) {
    delete w;
    return fail();
  }
  return promise;
}

napi_value PrmkitCollectives::CheckPeerHealth(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  ENSURE_NAPI_OK_RETVAL(env, napi_get_cb_info(env, info, &argc, args, nullptr, nullptr), nullptr);
  if (argc < 2) {
    NAPI_THROW_ERROR(env, "checkCollectivePeerHealth(task, timeoutMs): got %zu args", argc);
    return nullptr;
  }
  ENSURE_VALUE_IS_STRING_RETVAL(env, args[0], nullptr);
  ENSURE_VALUE_IS_NUMBER_RETVAL(env, args[1], nullptr);
  TFJSBackend *backend = Backend(env);
  if (backend == nullptr) return nullptr;
  auto *w = new HealthWork();
  w->context = backend->tfe_context_;
  if (GetStringParam(env, args[0], w->task) != napi_ok ||
      napi_get_value_int64(env, args[1], &w->timeout_ms) != napi_ok) {
    delete w;
    return nullptr;
  }
  napi_value promise = QueueWork(env, "prmkit.checkCollectivePeerHealth", HealthOnWorker, HealthDone, w, &w->work, &w->deferred);
  if (promise == nullptr) delete w;
  return promise;
}

napi_value PrmkitCollectives::AbortCollectiveOps(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  ENSURE_NAPI_OK_RETVAL(env, napi_get_cb_info(env, info, &argc, args, nullptr, nullptr), nullptr);
  std::string message = "collective ops aborted";
  if (argc >= 1) ENSURE_NAPI_OK_RETVAL(env, GetStringParam(env, args[0], message), nullptr);
  TFJSBackend *backend = Backend(env);
  if (backend == nullptr) return nullptr;
  TF_AutoStatus status;
  TF_SetStatus(status.status, TF_UNAVAILABLE, message.c_str());
  TFE_AbortCollectiveOps(backend->tfe_context_, status.status);
  return nullptr;
}

napi_value PrmkitCollectives::ServerDefFromText(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  ENSURE_NAPI_OK_RETVAL(env, napi_get_cb_info(env, info, &argc, args, nullptr, nullptr), nullptr);
  if (argc < 1) {
    NAPI_THROW_ERROR(env, "serverDefFromText(text): missing the text");
    return nullptr;
  }
  ENSURE_VALUE_IS_STRING_RETVAL(env, args[0], nullptr);
  std::string text;
  ENSURE_NAPI_OK_RETVAL(env, GetStringParam(env, args[0], text), nullptr);
  TF_AutoStatus status;
  TF_Buffer *buffer = TFE_GetServerDef(text.c_str(), status.status);
  ENSURE_TF_OK_RETVAL(env, status, nullptr);
  void *data = nullptr;
  napi_value array_buffer, result;
  napi_status nstatus = napi_create_arraybuffer(env, buffer->length, &data, &array_buffer);
  if (nstatus == napi_ok) memcpy(data, buffer->data, buffer->length);
  const size_t length = buffer->length;
  TF_DeleteBuffer(buffer);
  ENSURE_NAPI_OK_RETVAL(env, nstatus, nullptr);
  ENSURE_NAPI_OK_RETVAL(env, napi_create_typedarray(env, napi_uint8_array, length, array_buffer, 0, &result), nullptr);
  return result;
}

void RegisterPrmkitCollectives(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"enableCollectiveOps", nullptr, PrmkitCollectives::EnableCollectiveOps, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"executeOpAsync", nullptr, PrmkitCollectives::ExecuteOpAsync, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"checkCollectivePeerHealth", nullptr, PrmkitCollectives::CheckPeerHealth, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"abortCollectiveOps", nullptr, PrmkitCollectives::AbortCollectiveOps, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"serverDefFromText", nullptr, PrmkitCollectives::ServerDefFromText, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, ARRAY_SIZE(properties), properties);
  RegisterPrmkitFused(env, exports);
}

}  // namespace tfnodejs
