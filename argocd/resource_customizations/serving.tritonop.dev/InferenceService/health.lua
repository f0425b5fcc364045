-- Argo CD health of a tritonop InferenceService, read from the status the operator writes.
-- Lua 5.1 as run by gopher-lua: no goto, no integer division, no bit operators.
local hs = {}

local function condition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function messageOf(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local function result(status, message)
  hs.status = status
  hs.message = message
  return hs
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  return result("Progressing", "InferenceService is being deleted")
end

local status = obj.status
if status == nil then
  return result("Progressing", "Waiting for the operator to report status")
end

-- Status written for an older spec says nothing about the current one.
local generation = obj.metadata and obj.metadata.generation
if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  return result("Progressing", "Waiting for the operator to observe the latest spec")
end

local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")
local reconciling = condition(status.conditions, "Reconciling")

local paused = obj.spec ~= nil and obj.spec.rollout ~= nil and obj.spec.rollout.paused == true
if paused and status.canaryRevision ~= nil and status.canaryRevision ~= "" then
  local weight = ""
  if status.canary ~= nil and status.canary.weight ~= nil then
    weight = " at " .. tostring(status.canary.weight) .. "% traffic"
  end
  return result("Suspended", messageOf(ready, "Canary " .. status.canaryRevision .. " is paused" .. weight))
end

if status.phase == "Failed" or (stalled ~= nil and stalled.status == "True") then
  return result("Degraded", messageOf(ready, messageOf(stalled, "InferenceService failed")))
end

-- A rollback keeps serving the stable revision, but the change in Git did not go live.
if status.phase == "RolledBack" then
  return result("Degraded", messageOf(ready, "Canary was rolled back"))
end

if ready ~= nil and ready.status == "True" then
  return result("Healthy", messageOf(ready, "InferenceService is ready"))
end

return result("Progressing", messageOf(ready, messageOf(reconciling, "Waiting for the InferenceService to become ready")))
