-- Argo CD health of an Application, taken from the health it reports for itself.
-- Argo CD stopped assessing Applications by default (v1.8); an app of apps needs this for
-- its sync waves to wait until the operator's Application is Healthy.
local hs = {}
if obj.status ~= nil and obj.status.health ~= nil and obj.status.health.status ~= nil then
  hs.status = obj.status.health.status
  hs.message = obj.status.health.message or ""
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for the Application to report its health"
return hs
